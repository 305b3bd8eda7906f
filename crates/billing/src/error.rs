//! The one error type of this crate. `Display` is what a client may read; database errors
//! say nothing more than "internal" at the HTTP boundary.

use kloyst_core::{DomainError, ErrorClass};
use rust_decimal::Decimal;

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The wallet cannot cover it: `shortfall` more would be needed (402).
    #[error("insufficient funds: {shortfall} more is needed")]
    InsufficientFunds { shortfall: Decimal },

    /// Not positive, more than 4 decimal places, or beyond numeric(14, 4).
    #[error("invalid amount: {0}")]
    InvalidAmount(String),

    #[error("wallet not found")]
    WalletNotFound,

    /// No such hold on this vendor's wallet.
    #[error("hold not found")]
    HoldNotFound,

    /// The hold is already settled (fully captured or released).
    #[error("hold is closed")]
    HoldClosed,

    /// The reference was posted before as something else (another kind, amount, hold or
    /// wallet). Nothing was posted.
    #[error("reference {0:?} was already used for a different posting")]
    ReferenceConflict(String),

    /// The group-commit batcher has stopped.
    #[error("the debit batcher has stopped")]
    BatcherClosed,

    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl DomainError for BillingError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::InsufficientFunds { .. } => ErrorClass::InsufficientFunds,
            Self::InvalidAmount(_) => ErrorClass::BadRequest,
            Self::WalletNotFound | Self::HoldNotFound => ErrorClass::NotFound,
            Self::HoldClosed | Self::ReferenceConflict(_) => ErrorClass::Conflict,
            Self::BatcherClosed | Self::Database(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::InvalidAmount(_) => "invalid_amount",
            Self::WalletNotFound => "wallet_not_found",
            Self::HoldNotFound => "hold_not_found",
            Self::HoldClosed => "hold_closed",
            Self::ReferenceConflict(_) => "reference_conflict",
            Self::BatcherClosed | Self::Database(_) => "internal_error",
        }
    }
}

/// A unique violation on a ledger reference: another wallet's posting won the race.
pub(crate) fn reference_conflict_or(error: sqlx::Error, reference: &str) -> BillingError {
    let is_reference = error.as_database_error().is_some_and(|e| {
        e.is_unique_violation()
            && e.constraint().is_some_and(|c| {
                matches!(
                    c,
                    "transactions_reference_key"
                        | "wallet_holds_reference_key"
                        | "wallet_holds_campaign_id_key"
                )
            })
    });
    if is_reference {
        BillingError::ReferenceConflict(reference.to_owned())
    } else {
        BillingError::Database(error)
    }
}
