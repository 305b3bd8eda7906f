//! The one error type of this crate. Its `Display` is the `detail` a client reads, so it
//! never carries internals; [`IdentityError::Internal`] is logged by the HTTP layer and
//! answered without detail.

use kloyst_core::{DomainError, ErrorClass, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// One entry per invalid field (422).
    #[error("{} field(s) are invalid", .0.len())]
    Invalid(Vec<FieldError>),

    /// Wrong email, wrong password, unknown or disabled account: one answer for all, so
    /// that the answer does not tell which accounts exist.
    #[error("the email or password is not correct")]
    InvalidCredentials,

    /// The password was right but the email address has not been verified yet.
    #[error("verify your email address first: enter the code we sent you, or request a new one")]
    EmailNotVerified,

    #[error("only an ADMIN of this vendor may do this")]
    AdminOnly,

    /// Cooldowns, hourly caps and failure limits (429 with `Retry-After`).
    #[error("{message}; try again in {retry_after_secs} s")]
    RateLimited {
        code: &'static str,
        message: &'static str,
        retry_after_secs: u64,
    },

    /// A wrong code. `attempts_left == 0`: it was the last try and the code is burnt.
    #[error("{}", otp_invalid_message(*.attempts_left))]
    OtpInvalid { attempts_left: u32 },

    /// No usable code: never sent, expired, burnt or already used.
    #[error("the code has expired or was already used: request a new one")]
    OtpExpired,

    /// A bearer or refresh token that is malformed, forged, expired or revoked, or whose
    /// user is no longer active in that vendor with that role.
    #[error("the token is not valid; log in again")]
    TokenInvalid,

    /// An already-rotated refresh token was presented: its whole family is now revoked.
    #[error(
        "this refresh token was already used; every session it belongs to has been signed out"
    )]
    RefreshTokenReused,

    /// Missing, or another vendor's: the same answer, so that nothing leaks.
    #[error("{0} not found")]
    NotFound(&'static str),

    #[error("a user with this email address already exists")]
    EmailTaken,

    #[error("a vendor must keep at least one active ADMIN")]
    LastAdmin,

    /// Unknown, revoked or expired (or its vendor is no longer active): one answer for all.
    #[error("the API key is not valid: it is unknown, revoked or expired")]
    ApiKeyInvalid,

    /// Missing, or another vendor's.
    #[error("API key not found")]
    ApiKeyNotFound,

    #[error("a vendor may have at most {max} active API keys: revoke one first")]
    ApiKeyLimit { max: u32 },

    #[error("internal error: {0}")]
    Internal(#[from] Internal),
}

fn otp_invalid_message(attempts_left: u32) -> String {
    if attempts_left == 0 {
        "the code is not correct and can no longer be used: request a new one".to_owned()
    } else {
        format!("the code is not correct ({attempts_left} attempt(s) left)")
    }
}

/// What went wrong on our side. Never shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] deadpool_redis::redis::RedisError),
    #[error("redis pool: {0}")]
    RedisPool(#[from] deadpool_redis::PoolError),
    #[error("outbox: {0}")]
    Outbox(#[from] kloyst_outbox::OutboxError),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("token signing: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("a stored value is malformed: {0}")]
    Corrupt(String),
    #[error("blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl IdentityError {
    pub(crate) fn rate_limited(
        code: &'static str,
        message: &'static str,
        retry_after_secs: u64,
    ) -> Self {
        Self::RateLimited {
            code,
            message,
            retry_after_secs: retry_after_secs.max(1),
        }
    }

    pub(crate) fn invalid_field(
        field: &str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid(vec![FieldError::new(field, code, message)])
    }
}

/// Lets `?` turn store errors into [`IdentityError::Internal`] directly.
macro_rules! internal_from {
    ($($source:ty),* $(,)?) => {$(
        impl From<$source> for IdentityError {
            fn from(error: $source) -> Self {
                Self::Internal(Internal::from(error))
            }
        }
    )*};
}
internal_from!(
    deadpool_redis::redis::RedisError,
    deadpool_redis::PoolError,
    kloyst_outbox::OutboxError,
    jsonwebtoken::errors::Error,
    tokio::task::JoinError,
);

/// Database errors: a session refused by `begin_as_user` and the last-admin trigger are
/// rules of ours, not failures; everything
/// else is internal. (Unique violations are mapped where the constraint is expected.)
impl From<sqlx::Error> for IdentityError {
    fn from(error: sqlx::Error) -> Self {
        if kloyst_db::is_session_revoked(&error) {
            return Self::TokenInvalid;
        }
        if let Some(db) = error.as_database_error() {
            if db.constraint() == Some("users_last_active_admin") {
                return Self::LastAdmin;
            }
        }
        Self::Internal(Internal::Db(error))
    }
}

impl DomainError for IdentityError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) => ErrorClass::Invalid,
            Self::InvalidCredentials
            | Self::TokenInvalid
            | Self::RefreshTokenReused
            | Self::ApiKeyInvalid => ErrorClass::Unauthenticated,
            Self::EmailNotVerified | Self::AdminOnly => ErrorClass::Forbidden,
            Self::RateLimited {
                retry_after_secs, ..
            } => ErrorClass::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            // A wrong code is a bad value in the request, not a failed session: a 401
            // would make dashboards drop their (unrelated) login state.
            Self::OtpInvalid { .. } | Self::OtpExpired => ErrorClass::BadRequest,
            Self::NotFound(_) | Self::ApiKeyNotFound => ErrorClass::NotFound,
            Self::EmailTaken | Self::LastAdmin | Self::ApiKeyLimit { .. } => ErrorClass::Conflict,
            Self::Internal(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "validation_failed",
            Self::InvalidCredentials => "invalid_credentials",
            Self::EmailNotVerified => "email_not_verified",
            Self::AdminOnly => "admin_only",
            Self::RateLimited { code, .. } => code,
            Self::OtpInvalid { .. } => "otp_invalid",
            Self::OtpExpired => "otp_expired",
            Self::TokenInvalid => "token_invalid",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::NotFound(_) => "not_found",
            Self::EmailTaken => "email_taken",
            Self::LastAdmin => "last_admin",
            Self::ApiKeyInvalid => "api_key_invalid",
            Self::ApiKeyNotFound => "api_key_not_found",
            Self::ApiKeyLimit { .. } => "api_key_limit",
            Self::Internal(_) => "internal_error",
        }
    }

    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            Self::Invalid(errors) => errors.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_codes() {
        let limited = IdentityError::rate_limited("otp_resend_cooldown", "wait", 0);
        assert_eq!(
            limited.class(),
            ErrorClass::RateLimited {
                retry_after_secs: 1
            }
        );
        assert_eq!(limited.code(), "otp_resend_cooldown");
        assert_eq!(
            IdentityError::InvalidCredentials.class(),
            ErrorClass::Unauthenticated
        );
        assert_eq!(IdentityError::LastAdmin.code(), "last_admin");
        assert_eq!(
            IdentityError::NotFound("user").to_string(),
            "user not found"
        );
        assert_eq!(
            IdentityError::ApiKeyInvalid.class(),
            ErrorClass::Unauthenticated
        );
        assert_eq!(IdentityError::ApiKeyInvalid.code(), "api_key_invalid");
        assert_eq!(IdentityError::ApiKeyNotFound.class(), ErrorClass::NotFound);
        assert_eq!(IdentityError::ApiKeyNotFound.code(), "api_key_not_found");
        let limit = IdentityError::ApiKeyLimit { max: 25 };
        assert_eq!(limit.class(), ErrorClass::Conflict);
        assert_eq!(limit.code(), "api_key_limit");
        assert!(limit.to_string().contains("25"));
        let invalid = IdentityError::invalid_field("password", "password_too_short", "short");
        assert_eq!(invalid.field_errors()[0].field, "password");
    }

    #[test]
    fn internal_detail_is_generic_in_the_code() {
        let error = IdentityError::from(Internal::Hash("boom".into()));
        assert_eq!(error.class(), ErrorClass::Internal);
        assert_eq!(error.code(), "internal_error");
    }
}
