//! What became of one recipient's send, decided from Meta's answer.

use std::time::Duration;

use kloyst_meta::{ErrorClass, MetaError, SendAccepted};
use serde_json::Value;

/// Meta's "template paused" and "template disabled": every further send of the campaign
/// would fail the same way.
pub const TEMPLATE_PAUSED_CODES: [i64; 2] = [132015, 132016];
/// Throttles that mean the number's rate, not one recipient: slow the shared rate down.
pub const RATE_THROTTLE_CODES: [i64; 4] = [130429, 80007, 4, 613];
/// Longest transient backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a campaign is paused by the dispatcher (`campaigns.pause_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseReason {
    TokenExpired,
    TemplatePaused,
    /// Another account-level refusal (permissions, lock, billing).
    AccountBlocked,
}

impl PauseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::TemplatePaused => "TEMPLATE_PAUSED",
            Self::AccountBlocked => "ACCOUNT_BLOCKED",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Meta accepted it: SENT with the wamid.
    Sent { wamid: String, raw: Value },
    /// Never going to work: FAILED.
    Failed {
        code: Option<i32>,
        title: Option<String>,
        message: String,
        retryable: bool,
    },
    /// Back to PENDING, due after `delay`; `counted = false` gives the attempt back.
    Retry {
        delay: Duration,
        code: Option<i32>,
        message: Option<String>,
        counted: bool,
    },
    /// Not sent and never will be: the contact opted out after the launch. SKIPPED.
    Skipped,
    /// Meta may or may not have accepted it (no answer in time): left SENDING, for the
    /// reconciler to settle by its callback data. Never resent.
    Ambiguous,
}

impl Outcome {
    /// Not sent (halted, out of time): back to PENDING as if never claimed.
    pub fn unsent() -> Self {
        Self::Retry {
            delay: Duration::ZERO,
            code: None,
            message: None,
            counted: false,
        }
    }
}

/// What the batch must do besides recording the outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Signals {
    pub pause: Option<PauseReason>,
    pub slow_down: bool,
}

pub(crate) fn accepted(accepted: SendAccepted) -> Outcome {
    Outcome::Sent {
        wamid: accepted.wamid,
        raw: accepted.raw,
    }
}

/// Classifies a failed send of a recipient on its `attempts`-th attempt.
pub(crate) fn failed(
    error: &MetaError,
    attempts: i16,
    max_attempts: i16,
    retry_base: Duration,
) -> (Outcome, Signals) {
    let code = error.code();
    let code32 = code.and_then(|c| i32::try_from(c).ok());
    let (title, message) = match error {
        MetaError::Api {
            kind,
            message,
            details,
            ..
        } => (
            kind.clone(),
            match details {
                Some(details) if !details.is_empty() => format!("{message}: {details}"),
                _ => message.clone(),
            },
        ),
        other => (None, other.to_string()),
    };
    let mut signals = Signals::default();
    if code.is_some_and(|c| TEMPLATE_PAUSED_CODES.contains(&c)) {
        signals.pause = Some(PauseReason::TemplatePaused);
        return (Outcome::unsent(), signals);
    }
    let outcome = match error.class() {
        ErrorClass::RetryLater(delay) => {
            signals.slow_down = code.is_some_and(|c| RATE_THROTTLE_CODES.contains(&c));
            Outcome::Retry {
                delay,
                code: code32,
                message: Some(message),
                counted: false,
            }
        }
        ErrorClass::AccountFatal => {
            signals.pause = Some(match code {
                Some(0 | 190) => PauseReason::TokenExpired,
                _ => PauseReason::AccountBlocked,
            });
            Outcome::unsent()
        }
        ErrorClass::Transient if matches!(error, MetaError::Timeout) => Outcome::Ambiguous,
        ErrorClass::Transient if attempts >= max_attempts => Outcome::Failed {
            code: code32,
            title,
            message,
            retryable: true,
        },
        ErrorClass::Transient => {
            let exponent = u32::try_from(attempts.max(1) - 1).unwrap_or(0).min(16);
            Outcome::Retry {
                delay: retry_base.saturating_mul(1 << exponent).min(MAX_BACKOFF),
                code: code32,
                message: Some(message),
                counted: true,
            }
        }
        ErrorClass::Permanent => Outcome::Failed {
            code: code32,
            title,
            message,
            retryable: false,
        },
    };
    (outcome, signals)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn api(http_status: u16, code: i64) -> MetaError {
        MetaError::Api {
            http_status,
            code,
            subcode: None,
            kind: Some("OAuthException".into()),
            message: format!("error {code}"),
            details: None,
            fbtrace_id: None,
            is_transient: false,
            retry_after: None,
        }
    }

    const BASE: Duration = Duration::from_secs(2);

    #[test]
    fn throttles_retry_later_uncounted_and_slow_the_number_down() {
        let (outcome, signals) = failed(&api(400, 130429), 1, 5, BASE);
        assert!(
            matches!(outcome, Outcome::Retry { delay, counted: false, .. } if delay == Duration::from_secs(1))
        );
        assert!(signals.slow_down);
        let (outcome, signals) = failed(&api(400, 131056), 1, 5, BASE);
        assert!(matches!(outcome, Outcome::Retry { delay, .. } if delay == Duration::from_secs(6)));
        assert!(!signals.slow_down, "a pair limit is about one recipient");
    }

    #[test]
    fn transient_errors_back_off_then_fail_retryable() {
        let (first, _) = failed(&api(500, 1), 1, 5, BASE);
        assert!(matches!(first, Outcome::Retry { delay, counted: true, .. } if delay == BASE));
        let (third, _) = failed(&api(500, 1), 3, 5, BASE);
        assert!(matches!(third, Outcome::Retry { delay, .. } if delay == BASE * 4));
        let (last, _) = failed(&api(500, 1), 5, 5, BASE);
        assert!(matches!(
            last,
            Outcome::Failed {
                retryable: true,
                code: Some(1),
                ..
            }
        ));
        let (timeout, _) = failed(&MetaError::Timeout, 1, 5, BASE);
        assert_eq!(
            timeout,
            Outcome::Ambiguous,
            "Meta may have accepted it: never resent"
        );
    }

    #[test]
    fn permanent_errors_fail_and_account_errors_pause() {
        let (outcome, signals) = failed(&api(400, 131026), 1, 5, BASE);
        assert!(matches!(
            outcome,
            Outcome::Failed {
                retryable: false,
                code: Some(131026),
                ..
            }
        ));
        assert_eq!(signals.pause, None);
        let (outcome, signals) = failed(&api(401, 190), 1, 5, BASE);
        assert_eq!(outcome, Outcome::unsent());
        assert_eq!(signals.pause, Some(PauseReason::TokenExpired));
        let (outcome, signals) = failed(&api(400, 132015), 1, 5, BASE);
        assert_eq!(outcome, Outcome::unsent());
        assert_eq!(signals.pause, Some(PauseReason::TemplatePaused));
    }
}
