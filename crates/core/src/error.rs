//! How a domain error tells the HTTP layer what it means, without the domain crate knowing
//! HTTP: each domain error type implements [`DomainError`], and `kloyst-http` turns any of
//! them into problem+json in one place.

use serde::Serialize;

/// What kind of failure it is; decides the status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Malformed request (400).
    BadRequest,
    /// Not authenticated, or the credentials are wrong (401).
    Unauthenticated,
    /// Authenticated but not allowed, or not allowed yet (403).
    Forbidden,
    /// Missing, or another tenant's (404: never reveal that it exists).
    NotFound,
    /// Conflicts with the current state (409).
    Conflict,
    /// The wallet cannot cover it (402).
    InsufficientFunds,
    /// The body is larger than allowed (413).
    PayloadTooLarge,
    /// Well-formed but invalid fields (422), see [`DomainError::field_errors`].
    Invalid,
    /// Too many attempts; try again after this many seconds (429).
    RateLimited { retry_after_secs: u64 },
    /// A provider we depend on (e.g. Razorpay) is unreachable or failing: retry after this
    /// many seconds (503). Logged like an internal error, but the client may retry.
    Unavailable { retry_after_secs: u64 },
    /// Ours: logged, and answered without detail (500).
    Internal,
}

/// One invalid field of a request body, query or CSV row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path, e.g. `attributes.city` or `[3].mobile`.
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Implemented by every domain crate's error type.
pub trait DomainError: std::error::Error {
    fn class(&self) -> ErrorClass;

    /// Stable, machine-readable code clients switch on (e.g. `otp_expired`).
    fn code(&self) -> &'static str;

    /// For [`ErrorClass::Invalid`]: one entry per invalid field.
    fn field_errors(&self) -> Vec<FieldError> {
        Vec::new()
    }
}
