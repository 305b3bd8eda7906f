//! The one error type of the applier. Everything here is ours to fix or retry (the applier
//! runs in a worker, not behind a request): unpriced messages and refused charges are not
//! errors but flags on the message (see [`crate::state`]).

use kloyst_billing::BillingError;
use kloyst_core::{DomainError, ErrorClass};
use kloyst_pricing::PricingError;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// The ledger failed for another reason than the wallet refusing (a database error).
    #[error("billing: {0}")]
    Billing(#[from] BillingError),

    /// The pricing engine could not read its reference data.
    #[error("pricing: {0}")]
    Pricing(#[from] PricingError),
}

impl DomainError for DeliveryError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Internal
    }

    fn code(&self) -> &'static str {
        "internal_error"
    }
}
