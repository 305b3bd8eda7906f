//! The one error type of the quote. Its `Display` is the `detail` a client reads; database
//! failures are [`QuoteError::Database`] and never shown to a client.

use kloyst_billing::BillingError;
use kloyst_core::{DomainError, ErrorClass, FieldError};
use kloyst_outbox::OutboxError;
use kloyst_pricing::PricingError;
use rust_decimal::Decimal;

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

/// The one error type of a campaign's launch, lifecycle and reads. Its `Display` is the
/// `detail` a client reads; database, billing and outbox failures are never shown.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The quote's own refusals: template or list not found, pricing not configured, a
    /// revoked session.
    #[error(transparent)]
    Quote(QuoteError),

    /// Only APPROVED templates send.
    #[error("the template is {status}; only an APPROVED template can be sent")]
    TemplateNotApproved { status: String },

    /// One entry per invalid field (422).
    #[error("{} field(s) are invalid", .0.len())]
    Invalid(Vec<FieldError>),

    /// Nothing to send: every member is opted out or has no priced country (422).
    #[error("the list has no recipient that can be sent to")]
    NoRecipients,

    /// The Idempotency-Key header is not 1-255 printable ASCII characters (400).
    #[error("Idempotency-Key must be 1 to 255 printable ASCII characters")]
    IdempotencyKeyInvalid,

    /// The key was used before for another campaign (another name, template or list).
    #[error("this Idempotency-Key was used for a different launch")]
    IdempotencyKeyReused,

    /// The wallet's available balance cannot cover the quote (402).
    #[error("insufficient funds: {shortfall} more is needed")]
    InsufficientFunds {
        shortfall: Decimal,
        required: Decimal,
        available: Decimal,
    },

    /// The list changed between the quote and the freezing of its recipients: nothing was
    /// launched; quoting again and retrying will do.
    #[error("the list changed while the campaign was being launched; try again")]
    ListChanged,

    /// Missing, or another vendor's (RLS hides it): the same answer either way.
    #[error("campaign not found")]
    NotFound,

    /// `GET /v1/messages/:id`: no such single message of the vendor.
    #[error("message not found")]
    MessageNotFound,

    /// `POST /v1/messages` to a contact of the vendor who opted out (409).
    #[error("the recipient opted out of messages from this business")]
    RecipientOptedOut,

    /// `retry-failed` on a campaign none of whose recipients failed with a retryable
    /// reason (or all of them were already re-targeted by an earlier retry) (422).
    #[error("the campaign has no failed recipient that can be retried")]
    NoRetryableFailures,

    /// The campaign's status does not allow this action.
    #[error("a {status} campaign cannot be {action}")]
    InvalidState {
        status: String,
        action: &'static str,
    },

    #[error("the token is not valid; log in again")]
    SessionRevoked,

    #[error("billing: {0}")]
    Billing(BillingError),

    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),

    #[error("postgres: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for CampaignError {
    fn from(error: sqlx::Error) -> Self {
        if kloyst_db::is_session_revoked(&error) {
            return Self::SessionRevoked;
        }
        Self::Database(error)
    }
}

impl From<QuoteError> for CampaignError {
    fn from(error: QuoteError) -> Self {
        match error {
            QuoteError::SessionRevoked => Self::SessionRevoked,
            QuoteError::Database(inner) => Self::Database(inner),
            other => Self::Quote(other),
        }
    }
}

impl From<BillingError> for CampaignError {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::Database(inner) => inner.into(),
            other => Self::Billing(other),
        }
    }
}

impl DomainError for CampaignError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Quote(inner) => inner.class(),
            Self::TemplateNotApproved { .. } | Self::ListChanged | Self::InvalidState { .. } => {
                ErrorClass::Conflict
            }
            Self::Invalid(_)
            | Self::NoRecipients
            | Self::IdempotencyKeyReused
            | Self::NoRetryableFailures => ErrorClass::Invalid,
            Self::RecipientOptedOut => ErrorClass::Conflict,
            Self::MessageNotFound => ErrorClass::NotFound,
            Self::IdempotencyKeyInvalid => ErrorClass::BadRequest,
            Self::InsufficientFunds { .. } => ErrorClass::InsufficientFunds,
            Self::NotFound => ErrorClass::NotFound,
            Self::SessionRevoked => ErrorClass::Unauthenticated,
            Self::Billing(_) | Self::Outbox(_) | Self::Database(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Quote(inner) => inner.code(),
            Self::TemplateNotApproved { .. } => "template_not_approved",
            Self::Invalid(_) => "validation_failed",
            Self::NoRecipients => "no_recipients",
            Self::IdempotencyKeyInvalid => "idempotency_key_invalid",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::ListChanged => "list_changed",
            Self::NotFound => "campaign_not_found",
            Self::MessageNotFound => "message_not_found",
            Self::RecipientOptedOut => "recipient_opted_out",
            Self::NoRetryableFailures => "no_retryable_failures",
            Self::InvalidState { .. } => "invalid_state",
            Self::SessionRevoked => "token_invalid",
            Self::Billing(_) | Self::Outbox(_) | Self::Database(_) => "internal_error",
        }
    }

    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            Self::Invalid(fields) => fields.clone(),
            Self::NoRecipients => vec![FieldError::new(
                "list_id",
                "no_recipients",
                "every member is opted out or has no country the rate card prices",
            )],
            Self::IdempotencyKeyReused => vec![FieldError::new(
                "Idempotency-Key",
                "reused",
                "already used for a launch with another name, template or list",
            )],
            _ => Vec::new(),
        }
    }
}
