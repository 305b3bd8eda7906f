//! What a call to Meta can fail with, and what the caller should do about it ([`ErrorClass`]).
//!
//! Meta asks integrators to act on the error `code`, not on the HTTP status (copies of its table
//! disagree on 400 vs 429), so the classification looks at the code first and uses the HTTP
//! status only for codes it does not know.

use std::time::Duration;

use serde::Deserialize;

/// A failed call to the Cloud API. No variant ever carries the access token.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Meta answered with its error envelope `{"error": {...}}`.
    #[error("meta error {code} (http {http_status}): {message}")]
    Api {
        http_status: u16,
        code: i64,
        /// `error_subcode`: deprecated by Meta since v16.0 but still sent by some endpoints.
        subcode: Option<i64>,
        /// `error.type`, e.g. `OAuthException`.
        kind: Option<String>,
        message: String,
        /// `error.error_data.details`: the part worth showing to an operator.
        details: Option<String>,
        fbtrace_id: Option<String>,
        /// `error.is_transient`: Meta's own hint that the same request may succeed later.
        is_transient: bool,
        /// From a `Retry-After` header, if Meta sent one.
        retry_after: Option<Duration>,
    },
    /// No complete answer within the configured timeout. Meta may still have accepted the
    /// message: `biz_opaque_callback_data` lets a status webhook be matched to it.
    #[error("meta did not answer in time")]
    Timeout,
    #[error("could not connect to meta: {0}")]
    Connect(String),
    /// A non-2xx answer that is not Meta's error envelope (a proxy, a load balancer).
    #[error("meta answered http {http_status}: {body_excerpt}")]
    Http {
        http_status: u16,
        body_excerpt: String,
    },
    /// A 2xx answer we could not read (e.g. no `messages[0].id`).
    #[error("unreadable answer from meta: {0}")]
    Decode(String),
    #[error("meta client configuration: {0}")]
    Config(String),
}

/// What the caller should do with a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttled: retry the same request after the delay, without counting it as a fault.
    RetryLater(Duration),
    /// A fault on the way or at Meta: retry with backoff.
    Transient,
    /// This request will never succeed: fail the message.
    Permanent,
    /// Every request will fail until someone fixes the account (token, permissions, lock,
    /// billing): stop sending and alert.
    AccountFatal,
}

/// 130429: the number's throughput (80 mps by default) is per second.
const THROUGHPUT_DELAY: Duration = Duration::from_secs(1);
/// 131056: Meta allows one message every 6 s to the same user.
const PAIR_DELAY: Duration = Duration::from_secs(6);
/// 4, 80007, 613: hourly call budgets; a minute is a polite first wait.
const CALL_BUDGET_DELAY: Duration = Duration::from_secs(60);
/// 131048: the number itself is restricted for spam; hammering it lowers quality further.
const SPAM_DELAY: Duration = Duration::from_secs(15 * 60);
/// A throttle we have no code for (HTTP 429).
const UNKNOWN_THROTTLE_DELAY: Duration = Duration::from_secs(60);

impl MetaError {
    /// The classification table (code first, then Meta's `is_transient`, then HTTP status):
    ///
    /// | class | codes / cases | delay (when no `Retry-After`) |
    /// |---|---|---|
    /// | `RetryLater` | 130429 throughput | 1 s |
    /// | `RetryLater` | 131056 pair rate limit (same recipient) | 6 s |
    /// | `RetryLater` | 4, 80007, 613 call/WABA rate limits | 60 s |
    /// | `RetryLater` | 131048 spam rate limit: the number is restricted, not the message; back off long and let the job's attempt cap dead-letter it if the restriction lasts | 15 min |
    /// | `RetryLater` | any other code answered with HTTP 429, or a non-Meta 429 | 60 s |
    /// | `AccountFatal` | 0 and 190 (token), 3, 10, 200–299 (permissions), 131031 (locked), 368 (policy block), 131042 (billing), `Config` | |
    /// | `Transient` | 1, 2, 131000, 131016, 131057; `is_transient: true`; any other 5xx; `Timeout`; `Connect` | |
    /// | `Permanent` | 100, 131008, 131009, 131026, 131047, 131050, 131051, 132000–132016, any other 4xx; `Decode` (Meta answered 2xx, so retrying could send twice) | |
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api {
                http_status,
                code,
                is_transient,
                retry_after,
                ..
            } => classify_api(*http_status, *code, *is_transient, *retry_after),
            Self::Timeout | Self::Connect(_) => ErrorClass::Transient,
            Self::Http { http_status, .. } => classify_status(*http_status, None),
            Self::Decode(_) => ErrorClass::Permanent,
            Self::Config(_) => ErrorClass::AccountFatal,
        }
    }

    /// Meta's error code, when Meta answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn classify_api(
    http_status: u16,
    code: i64,
    is_transient: bool,
    retry_after: Option<Duration>,
) -> ErrorClass {
    let later = |default| ErrorClass::RetryLater(retry_after.unwrap_or(default));
    match code {
        130429 => later(THROUGHPUT_DELAY),
        131056 => later(PAIR_DELAY),
        4 | 80007 | 613 => later(CALL_BUDGET_DELAY),
        131048 => later(SPAM_DELAY),
        0 | 3 | 10 | 190 | 200..=299 | 368 | 131031 | 131042 => ErrorClass::AccountFatal,
        _ if is_transient => ErrorClass::Transient,
        1 | 2 | 131000 | 131016 | 131057 => ErrorClass::Transient,
        100 | 131008 | 131009 | 131026 | 131047 | 131050 | 131051 | 132000..=132016 => {
            ErrorClass::Permanent
        }
        _ => classify_status(http_status, retry_after),
    }
}

fn classify_status(http_status: u16, retry_after: Option<Duration>) -> ErrorClass {
    match http_status {
        429 => ErrorClass::RetryLater(retry_after.unwrap_or(UNKNOWN_THROTTLE_DELAY)),
        500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// `{"error": {...}}` as Meta sends it on a non-2xx answer.
#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    error_subcode: Option<i64>,
    error_data: Option<ErrorData>,
    fbtrace_id: Option<String>,
    #[serde(default)]
    is_transient: bool,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// Longest slice of a non-Meta error body kept in [`MetaError::Http`].
const BODY_EXCERPT_CHARS: usize = 300;

/// Builds the error for a non-2xx answer: [`MetaError::Api`] when the body is Meta's envelope,
/// [`MetaError::Http`] otherwise.
pub(crate) fn from_error_body(
    http_status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> MetaError {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => MetaError::Api {
            http_status,
            code: error.code,
            subcode: error.error_subcode,
            kind: error.kind,
            message: error.message,
            details: error.error_data.and_then(|data| data.details),
            fbtrace_id: error.fbtrace_id,
            is_transient: error.is_transient,
            retry_after,
        },
        Err(_) => MetaError::Http {
            http_status,
            body_excerpt: String::from_utf8_lossy(body)
                .chars()
                .take(BODY_EXCERPT_CHARS)
                .collect(),
        },
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (a date in the past means "now").
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(http_status: u16, code: i64) -> MetaError {
        api_with(http_status, code, false, None)
    }

    fn api_with(
        http_status: u16,
        code: i64,
        is_transient: bool,
        retry_after: Option<Duration>,
    ) -> MetaError {
        MetaError::Api {
            http_status,
            code,
            subcode: None,
            kind: None,
            message: String::new(),
            details: None,
            fbtrace_id: None,
            is_transient,
            retry_after,
        }
    }

    #[test]
    fn throttling_codes_retry_later_with_per_code_defaults() {
        let secs = |s| ErrorClass::RetryLater(Duration::from_secs(s));
        assert_eq!(api(400, 130429).class(), secs(1));
        assert_eq!(api(429, 130429).class(), secs(1));
        assert_eq!(api(400, 131056).class(), secs(6));
        assert_eq!(api(400, 80007).class(), secs(60));
        assert_eq!(api(400, 4).class(), secs(60));
        assert_eq!(api(400, 613).class(), secs(60));
        assert_eq!(api(400, 131048).class(), secs(15 * 60));
    }

    #[test]
    fn retry_after_header_overrides_the_default_delay() {
        let error = api_with(429, 130429, false, Some(Duration::from_secs(7)));
        assert_eq!(
            error.class(),
            ErrorClass::RetryLater(Duration::from_secs(7))
        );
        let unknown = api_with(429, 999_999, false, Some(Duration::from_secs(3)));
        assert_eq!(
            unknown.class(),
            ErrorClass::RetryLater(Duration::from_secs(3))
        );
    }

    #[test]
    fn account_problems_are_fatal_whatever_the_http_status() {
        for code in [0, 3, 10, 190, 200, 250, 299, 368, 131031, 131042] {
            assert_eq!(api(400, code).class(), ErrorClass::AccountFatal, "{code}");
            assert_eq!(api(500, code).class(), ErrorClass::AccountFatal, "{code}");
        }
        assert_eq!(
            MetaError::Config("bad".into()).class(),
            ErrorClass::AccountFatal
        );
    }

    #[test]
    fn meta_side_faults_and_network_errors_are_transient() {
        for code in [1, 2, 131000, 131016, 131057] {
            assert_eq!(api(400, code).class(), ErrorClass::Transient, "{code}");
        }
        assert_eq!(api(503, 424242).class(), ErrorClass::Transient);
        let flagged = api_with(400, 424242, true, None);
        assert_eq!(flagged.class(), ErrorClass::Transient);
        assert_eq!(MetaError::Timeout.class(), ErrorClass::Transient);
        assert_eq!(
            MetaError::Connect("refused".into()).class(),
            ErrorClass::Transient
        );
        let gateway = MetaError::Http {
            http_status: 502,
            body_excerpt: "<html>".into(),
        };
        assert_eq!(gateway.class(), ErrorClass::Transient);
    }

    #[test]
    fn bad_requests_and_template_problems_are_permanent() {
        for code in [100, 131008, 131009, 131026, 131047, 131050, 131051] {
            assert_eq!(api(400, code).class(), ErrorClass::Permanent, "{code}");
        }
        for code in 132000..=132016 {
            assert_eq!(api(400, code).class(), ErrorClass::Permanent, "{code}");
        }
        // 132001 is a 404 at Meta; a code's class never depends on that.
        assert_eq!(api(404, 132001).class(), ErrorClass::Permanent);
        assert_eq!(api(400, 424242).class(), ErrorClass::Permanent);
        assert_eq!(
            MetaError::Decode("no id".into()).class(),
            ErrorClass::Permanent
        );
        let proxy = MetaError::Http {
            http_status: 404,
            body_excerpt: "not found".into(),
        };
        assert_eq!(proxy.class(), ErrorClass::Permanent);
    }

    #[test]
    fn meta_error_envelope_is_parsed() {
        // Meta's 132000 example (facts §2.3).
        let body = br#"{"error":{"message":"(#132000) Number of parameters does not match the expected number of params","type":"OAuthException","code":132000,
   "error_data":{"messaging_product":"whatsapp","details":"body: number of localizable_params (0) does not match the expected number of params (1)"},
   "fbtrace_id":"ATdqH-A9cFJNdLo1xMIvz0t"}}"#;
        match from_error_body(400, body, None) {
            MetaError::Api {
                http_status,
                code,
                subcode,
                kind,
                message,
                details,
                fbtrace_id,
                is_transient,
                retry_after,
            } => {
                assert_eq!(http_status, 400);
                assert_eq!(code, 132000);
                assert_eq!(subcode, None);
                assert_eq!(kind.as_deref(), Some("OAuthException"));
                assert!(message.starts_with("(#132000) Number of parameters"));
                assert_eq!(
                    details.as_deref(),
                    Some("body: number of localizable_params (0) does not match the expected number of params (1)")
                );
                assert_eq!(fbtrace_id.as_deref(), Some("ATdqH-A9cFJNdLo1xMIvz0t"));
                assert!(!is_transient);
                assert_eq!(retry_after, None);
            }
            other => panic!("expected Api, got {other:?}"),
        }
    }

    #[test]
    fn envelope_with_subcode_transient_flag_and_retry_after() {
        let body = br#"{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException","code":131056,"error_subcode":2494055,"is_transient":true,"fbtrace_id":"A1"}}"#;
        let error = from_error_body(400, body, Some(Duration::from_secs(9)));
        assert_eq!(error.code(), Some(131056));
        assert!(matches!(
            error,
            MetaError::Api {
                subcode: Some(2494055),
                is_transient: true,
                ..
            }
        ));
        assert_eq!(
            error.class(),
            ErrorClass::RetryLater(Duration::from_secs(9))
        );
    }

    #[test]
    fn non_meta_error_body_becomes_http_with_a_bounded_excerpt() {
        let body = "x".repeat(5000);
        match from_error_body(502, body.as_bytes(), None) {
            MetaError::Http {
                http_status,
                body_excerpt,
            } => {
                assert_eq!(http_status, 502);
                assert_eq!(body_excerpt.len(), BODY_EXCERPT_CHARS);
            }
            other => panic!("expected Http, got {other:?}"),
        }
        assert_eq!(from_error_body(500, b"{}", None).code(), None);
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
