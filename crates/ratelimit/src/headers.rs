//! The `RateLimit-*` headers (draft-ietf-httpapi-ratelimit-headers, the separate-field
//! style most clients read) and the 429 answer.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue};
use kloyst_http::ApiError;

use crate::decision::Decision;
use crate::quota::{ceil_secs, Quota};

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Adds `RateLimit-Limit`, `-Remaining`, `-Reset` (seconds until the bucket is full again,
/// rounded up) and `-Policy: <limit>;w=<period seconds>`.
pub fn insert_headers(headers: &mut HeaderMap, decision: &Decision, quota: Quota) {
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(decision.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(
        RATELIMIT_RESET,
        HeaderValue::from(ceil_secs(decision.reset_after)),
    );
    // Digits, ';' and '=' only: always a valid header value.
    if let Ok(policy) =
        HeaderValue::from_str(&format!("{};w={}", quota.limit(), quota.window_secs()))
    {
        headers.insert(RATELIMIT_POLICY, policy);
    }
}

/// Whole seconds for `Retry-After`, rounded up and at least 1 so that a client that obeys
/// it is not refused again at once.
pub fn retry_after_secs(decision: &Decision) -> u64 {
    decision.retry_after.map_or(1, ceil_secs).max(1)
}

/// The 429 problem+json for a refused request, with `Retry-After` and the `RateLimit-*`
/// headers. Handlers that check a limiter themselves (e.g. per e-mail) answer with this too.
pub fn too_many_requests(decision: &Decision, quota: Quota) -> Response {
    let mut response = ApiError::too_many_requests(retry_after_secs(decision)).into_response();
    insert_headers(response.headers_mut(), decision, quota);
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> &'a str {
        headers.get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn headers_round_up_to_seconds() {
        let quota = Quota::parse("20/min").unwrap();
        let decision = Decision {
            allowed: true,
            limit: 20,
            remaining: 17,
            reset_after: Duration::from_millis(9_001),
            retry_after: None,
        };
        let mut headers = HeaderMap::new();
        insert_headers(&mut headers, &decision, quota);
        assert_eq!(header(&headers, &RATELIMIT_LIMIT), "20");
        assert_eq!(header(&headers, &RATELIMIT_REMAINING), "17");
        assert_eq!(header(&headers, &RATELIMIT_RESET), "10");
        assert_eq!(header(&headers, &RATELIMIT_POLICY), "20;w=60");
    }

    #[test]
    fn retry_after_is_whole_seconds_never_zero() {
        let refused = |retry: Duration| Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_after: Duration::from_secs(1),
            retry_after: Some(retry),
        };
        assert_eq!(retry_after_secs(&refused(Duration::from_millis(200))), 1);
        assert_eq!(retry_after_secs(&refused(Duration::from_millis(2_000))), 2);
        assert_eq!(retry_after_secs(&refused(Duration::from_millis(2_001))), 3);
        assert_eq!(retry_after_secs(&refused(Duration::ZERO)), 1);
    }

    #[test]
    fn the_refusal_is_a_problem_with_every_header() {
        let quota = Quota::parse("5/s").unwrap();
        let decision = Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_after: Duration::from_millis(1_000),
            retry_after: Some(Duration::from_millis(200)),
        };
        let response = too_many_requests(&decision, quota);
        assert_eq!(response.status(), http::StatusCode::TOO_MANY_REQUESTS);
        let headers = response.headers();
        assert_eq!(header(headers, &http::header::RETRY_AFTER), "1");
        assert_eq!(
            header(headers, &http::header::CONTENT_TYPE),
            "application/problem+json"
        );
        assert_eq!(header(headers, &RATELIMIT_REMAINING), "0");
        assert_eq!(header(headers, &RATELIMIT_RESET), "1");
        assert_eq!(header(headers, &RATELIMIT_POLICY), "5;w=1");
    }
}
