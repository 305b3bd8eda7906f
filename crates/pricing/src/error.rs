//! The one error type of this crate. Its `Display` is the `detail` a client or an operator
//! reads; database failures are [`PricingError::Db`] and never shown to a client.

use chrono::{DateTime, Utc};
use kloyst_core::{DomainError, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("no {currency} rate card is in force at {at}")]
    NoRateCard { currency: String, at: DateTime<Utc> },

    /// Meta does not price this category in this market on the card in force (e.g.
    /// AUTHENTICATION_INTERNATIONAL outside its countries). Not free: the caller decides.
    #[error("{category} messages are not priced in {market} on the rate card in force")]
    NotPriced { market: String, category: String },

    #[error("no {base}→{quote} exchange rate is in force at {at}")]
    NoFxRate {
        base: String,
        quote: String,
        at: DateTime<Utc>,
    },

    /// No margin row applies: we never guess one.
    #[error("no margin is configured for this vendor's {category} messages at {at}")]
    NoMargin { category: String, at: DateTime<Utc> },

    #[error("{0:?} is not a known country (ISO 3166-1 alpha-2)")]
    UnknownCountry(String),

    #[error("{0:?} is not a message category (MARKETING, UTILITY, AUTHENTICATION, AUTHENTICATION_INTERNATIONAL, SERVICE)")]
    UnknownCategory(String),

    #[error("the vendor has no wallet")]
    NoWallet,

    /// A fixed fee in another currency than the wallet's cannot be added without a rule.
    #[error(
        "the margin's fixed fee is in {margin_currency} but the wallet is in {wallet_currency}"
    )]
    MarginCurrency {
        margin_currency: String,
        wallet_currency: String,
    },

    /// Every bad line of a rate-card file, in file order; nothing was loaded.
    #[error("the rate card has {} bad line(s): {}", .0.len(), join_lines(.0))]
    InvalidCard(Vec<CardLineError>),

    #[error("a rate card named {0:?} is already loaded; loading it again is refused")]
    CardExists(String),

    #[error("a {currency} rate card already starts at {effective_from}")]
    CardStartTaken {
        currency: String,
        effective_from: DateTime<Utc>,
    },

    #[error("invalid rate card: {0}")]
    InvalidCardDetails(String),

    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
}

/// One bad line of a rate-card CSV (1-based, counting the header).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CardLineError {
    pub line: u64,
    pub message: String,
}

fn join_lines(errors: &[CardLineError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl DomainError for PricingError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::UnknownCountry(_) | Self::UnknownCategory(_) => ErrorClass::Invalid,
            Self::NotPriced { .. } | Self::CardExists(_) | Self::CardStartTaken { .. } => {
                ErrorClass::Conflict
            }
            Self::InvalidCard(_) | Self::InvalidCardDetails(_) => ErrorClass::BadRequest,
            // Missing configuration is ours to fix: logged, answered without detail.
            Self::NoRateCard { .. }
            | Self::NoFxRate { .. }
            | Self::NoMargin { .. }
            | Self::NoWallet
            | Self::MarginCurrency { .. }
            | Self::Db(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NoRateCard { .. } => "no_rate_card",
            Self::NotPriced { .. } => "not_priced",
            Self::NoFxRate { .. } => "no_fx_rate",
            Self::NoMargin { .. } => "no_margin",
            Self::UnknownCountry(_) => "unknown_country",
            Self::UnknownCategory(_) => "unknown_category",
            Self::NoWallet => "no_wallet",
            Self::MarginCurrency { .. } => "margin_currency",
            Self::InvalidCard(_) | Self::InvalidCardDetails(_) => "invalid_rate_card",
            Self::CardExists(_) => "rate_card_exists",
            Self::CardStartTaken { .. } => "rate_card_start_taken",
            Self::Db(_) => "internal",
        }
    }

    fn field_errors(&self) -> Vec<kloyst_core::FieldError> {
        match self {
            Self::UnknownCountry(_) => vec![kloyst_core::FieldError::new(
                "country",
                "unknown_country",
                self.to_string(),
            )],
            Self::UnknownCategory(_) => vec![kloyst_core::FieldError::new(
                "category",
                "unknown_category",
                self.to_string(),
            )],
            _ => Vec::new(),
        }
    }
}
