//! Errors of the recharge API (`init`, `verify`), mapped to problem+json by class.

use kloyst_core::{DomainError, ErrorClass, FieldError};

use crate::razorpay::RazorpayError;
use crate::signature::SignatureError;

/// How long a client should wait before retrying when Razorpay is unavailable.
const PROVIDER_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// One entry per invalid field (422).
    #[error("{} field(s) are invalid", .0.len())]
    Invalid(Vec<FieldError>),

    /// The Idempotency-Key was used before for another request (422).
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,

    #[error("this action needs the ADMIN role")]
    AdminOnly,

    /// No such order of this vendor (another vendor's is reported the same way).
    #[error("payment order not found")]
    OrderNotFound,

    #[error("the checkout signature is invalid: {0}")]
    SignatureInvalid(SignatureError),

    /// Razorpay is unreachable, failing, or refused our call (logged; the client may retry).
    #[error("the payment provider is unavailable; retry shortly")]
    ProviderUnavailable(#[source] RazorpayError),

    #[error("wallet not found")]
    WalletNotFound,

    /// The user's token no longer holds (disabled, or role changed): 401.
    #[error("the token is not valid; log in again")]
    SessionRevoked,

    #[error("internal error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for PaymentError {
    fn from(error: sqlx::Error) -> Self {
        if kloyst_db::is_session_revoked(&error) {
            return Self::SessionRevoked;
        }
        Self::Database(error)
    }
}

impl DomainError for PaymentError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) | Self::IdempotencyKeyReused => ErrorClass::Invalid,
            Self::AdminOnly => ErrorClass::Forbidden,
            Self::OrderNotFound | Self::WalletNotFound => ErrorClass::NotFound,
            Self::SignatureInvalid(_) => ErrorClass::BadRequest,
            Self::ProviderUnavailable(_) => ErrorClass::Unavailable {
                retry_after_secs: PROVIDER_RETRY_AFTER_SECS,
            },
            Self::SessionRevoked => ErrorClass::Unauthenticated,
            Self::Database(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "validation_failed",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::AdminOnly => "admin_only",
            Self::OrderNotFound => "order_not_found",
            Self::SignatureInvalid(_) => "signature_invalid",
            Self::ProviderUnavailable(_) => "payment_provider_unavailable",
            Self::WalletNotFound => "wallet_not_found",
            Self::SessionRevoked => "token_invalid",
            Self::Database(_) => "internal_error",
        }
    }

    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            Self::Invalid(fields) => fields.clone(),
            Self::IdempotencyKeyReused => vec![FieldError {
                field: "Idempotency-Key".to_owned(),
                code: "reused".to_owned(),
                message: "this key was used for a request with another amount".to_owned(),
            }],
            _ => Vec::new(),
        }
    }
}
