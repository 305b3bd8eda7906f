//! Browser-facing hardening: the CORS allow-list and security headers.

use axum::http::{header, HeaderName, HeaderValue, Method};
use kloyst_config::{ConfigError, Env};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// `CORS_ALLOWED_ORIGINS`: comma-separated origins the dashboard is served from
/// (e.g. `https://app.kloyst.com`). Unset = no cross-origin browser access at all.
pub fn cors_origins(env: &Env) -> Result<Vec<HeaderValue>, ConfigError> {
    let Some(raw) = env.optional("CORS_ALLOWED_ORIGINS") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.ends_with('/')
                && origin != "*";
            if !valid {
                return Err(ConfigError::Invalid {
                    var: "CORS_ALLOWED_ORIGINS",
                    reason: format!("{origin:?} is not an origin like https://app.kloyst.com"),
                });
            }
            HeaderValue::from_str(origin).map_err(|_| ConfigError::Invalid {
                var: "CORS_ALLOWED_ORIGINS",
                reason: format!("{origin:?} is not a valid header value"),
            })
        })
        .collect()
}

pub fn cors(origins: Vec<HeaderValue>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// Headers every API answer carries. JSON APIs render nothing, so the policy is "nothing".
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 5] {
    [
        SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ),
        SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ),
        // Tokens and personal data must not sit in shared caches.
        SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ),
    ]
}
