//! Rate limiting backed by Redis, shared by every api-gateway copy.
//!
//! - [`Quota`]: `limit` requests per `period`, bursts up to `limit`, read from strings
//!   such as `20/min`.
//! - [`RateLimiter`]: GCRA in one Lua script ([`RateLimiter::check`]); the clock is
//!   Redis's `TIME`, so gateways with drifting clocks still share one budget.
//! - [`RateLimitLayer`]: a tower layer for axum routers that adds the `RateLimit-*`
//!   headers and answers 429 problem+json with `Retry-After`.
//! - [`TrustedProxies::client_ip`]: the client address behind nginx.
//! - [`RateLimitSettings`]: the configuration.
//!
//! **Fail open.** When Redis cannot be reached (or does not answer within the limiter's
//! timeout) the layer lets requests through, logs a warning and counts
//! `rate_limit_errors_total`. An outage of the limiter must not take the API down with it;
//! limits are a defence against abuse, not a correctness property, and the other things
//! that need Redis will report the outage anyway. Callers that must fail closed (e.g. an
//! OTP guess counter) call [`RateLimiter::check`] and handle its error themselves.
//!
//! Metrics: `rate_limited_total{scope}` (refusals), `rate_limit_errors_total{scope}`.

mod client_ip;
mod decision;
mod headers;
mod layer;
mod limiter;
mod quota;
mod settings;

pub use client_ip::{by_client_ip, client_ip, ip_key, TrustedProxies};
pub use decision::Decision;
pub use headers::{
    insert_headers, retry_after_secs, too_many_requests, RATELIMIT_LIMIT, RATELIMIT_POLICY,
    RATELIMIT_REMAINING, RATELIMIT_RESET,
};
pub use layer::{RateLimit, RateLimitLayer};
pub use limiter::{RateLimitError, RateLimiter, DEFAULT_TIMEOUT};
pub use quota::{Quota, QuotaError};
pub use settings::{RateLimitSettings, API_PER_VENDOR_DEFAULT, AUTH_PER_IP_DEFAULT};
