//! The values the pricing engine reads and returns.

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::PricingError;

/// A template category as Meta prices it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Marketing,
    Utility,
    Authentication,
    AuthenticationInternational,
    Service,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Self::Marketing,
        Self::Utility,
        Self::Authentication,
        Self::AuthenticationInternational,
        Self::Service,
    ];

    /// Accepts Meta's spellings: any case, `-`, `_` or a space between words
    /// (`authentication-international`, `AUTHENTICATION_INTERNATIONAL`).
    pub fn parse(raw: &str) -> Result<Self, PricingError> {
        let normalised: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        Self::ALL
            .into_iter()
            .find(|category| category.as_str() == normalised)
            .ok_or_else(|| PricingError::UnknownCategory(raw.to_owned()))
    }

    /// The spelling stored in `rate_card_entries.category` and `pricing_margins.category`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "MARKETING",
            Self::Utility => "UTILITY",
            Self::Authentication => "AUTHENTICATION",
            Self::AuthenticationInternational => "AUTHENTICATION_INTERNATIONAL",
            Self::Service => "SERVICE",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The price of one delivered message. `meta_cost` and `total` are in the wallet's currency,
/// each rounded once to 4 decimals; `margin = total − meta_cost`. `fx_rate` (1 unit of
/// `rate_currency` in the wallet's currency) is recorded with each charge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Price {
    pub market: String,
    pub category: Category,
    pub rate_card_id: Uuid,
    /// Meta's rate in the card's currency.
    pub meta_rate: Decimal,
    pub rate_currency: String,
    pub fx_rate: Decimal,
    pub wallet_currency: String,
    pub meta_cost: Decimal,
    pub margin: Decimal,
    pub total: Decimal,
    pub margin_id: Option<Uuid>,
}

/// A rate card as listed (without its entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RateCardSummary {
    pub id: Uuid,
    pub name: String,
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub effective_to: Option<DateTime<Utc>>,
    pub is_sample: bool,
    pub source: Option<String>,
    pub entries: i64,
}

/// What the loader needs besides the CSV rows.
#[derive(Clone, Debug)]
pub struct NewRateCard {
    pub name: String,
    /// ISO 4217, upper case (the card's currency, e.g. USD).
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub source: Option<String>,
    /// Sample figures, not Meta's published card.
    pub is_sample: bool,
}

/// One parsed CSV row: Meta's rate for a market × category, with its line for errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRow {
    pub line: u64,
    pub market: String,
    pub category: Category,
    pub rate: Decimal,
}

/// A vendor's own prices on the card in force (`GET /v1/pricing/rates`).
#[derive(Clone, Debug, Serialize)]
pub struct RateSheet {
    pub rate_card: RateSheetCard,
    pub wallet_currency: String,
    pub fx_rate: Decimal,
    pub rates: Vec<RateLine>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RateSheetCard {
    pub name: String,
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub is_sample: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RateLine {
    pub market: String,
    pub category: Category,
    pub meta_rate: Decimal,
    pub meta_cost: Decimal,
    pub margin: Decimal,
    pub total: Decimal,
}

impl From<&Price> for RateLine {
    fn from(price: &Price) -> Self {
        Self {
            market: price.market.clone(),
            category: price.category,
            meta_rate: price.meta_rate,
            meta_cost: price.meta_cost,
            margin: price.margin,
            total: price.total,
        }
    }
}
