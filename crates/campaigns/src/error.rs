//! The one error type of the quote. Its `Display` is the `detail` a client reads; database
//! failures are [`QuoteError::Database`] and never shown to a client.

use kloyst_billing::BillingError;
use kloyst_core::{DomainError, ErrorClass};
use kloyst_pricing::PricingError;

#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    /// Missing, or another vendor's (RLS hides it): the same answer either way.
    #[error("template not found")]
    TemplateNotFound,

    #[error("contact list not found")]
    ListNotFound,

    /// No rate card, FX rate or margin applies at the quote's instant: nothing can be priced
    /// until an operator configures it (409, the pricing error's own code).
    #[error("the campaign cannot be priced now: {0}")]
    PricingUnavailable(PricingError),

    /// The user's token no longer holds (disabled, or role changed): 401.
    #[error("the token is not valid; log in again")]
    SessionRevoked,

    /// Anything else from the pricing engine (its database, an unexpected category).
    #[error("pricing: {0}")]
    Pricing(PricingError),

    #[error("billing: {0}")]
    Billing(#[from] BillingError),

    #[error("postgres: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for QuoteError {
    fn from(error: sqlx::Error) -> Self {
        if kloyst_db::is_session_revoked(&error) {
            return Self::SessionRevoked;
        }
        Self::Database(error)
    }
}

impl From<PricingError> for QuoteError {
    fn from(error: PricingError) -> Self {
        match error {
            PricingError::NoRateCard { .. }
            | PricingError::NoFxRate { .. }
            | PricingError::NoMargin { .. }
            | PricingError::MarginCurrency { .. } => Self::PricingUnavailable(error),
            other => Self::Pricing(other),
        }
    }
}

impl DomainError for QuoteError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::TemplateNotFound | Self::ListNotFound => ErrorClass::NotFound,
            Self::PricingUnavailable(_) => ErrorClass::Conflict,
            Self::SessionRevoked => ErrorClass::Unauthenticated,
            Self::Pricing(_) | Self::Billing(_) | Self::Database(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::TemplateNotFound => "template_not_found",
            Self::ListNotFound => "list_not_found",
            // no_rate_card, no_fx_rate, no_margin, margin_currency
            Self::PricingUnavailable(inner) => inner.code(),
            Self::SessionRevoked => "token_invalid",
            Self::Pricing(_) | Self::Billing(_) | Self::Database(_) => "internal_error",
        }
    }
}
