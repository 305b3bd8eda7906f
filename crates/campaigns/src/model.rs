//! The quote's request and answer. Money is `Decimal` in the wallet's currency and serializes
//! as a string, like every amount of the API.

use chrono::{DateTime, Utc};
use kloyst_pricing::Category;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /v1/campaigns/quote`: what would sending this template to this list cost?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub template_id: Uuid,
    pub list_id: Uuid,
}

/// The cost of sending a template to every billable member of a list, priced by the engine
/// the debit path uses, and whether the wallet's available balance covers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub template: QuotedTemplate,
    pub list: QuotedList,
    pub rate_card: QuotedRateCard,
    /// The wallet's currency: every amount of the quote is in it.
    pub currency: String,
    /// 1 unit of the rate card's currency in the wallet's currency.
    pub fx_rate: Decimal,
    pub recipients: RecipientCounts,
    /// One line per market with billable recipients, sorted by market.
    pub markets: Vec<MarketLine>,
    /// Σ of the markets' subtotals.
    pub total: Decimal,
    pub wallet: QuotedWallet,
    /// Whether the wallet's available balance (balance − held) covers `total`.
    pub covered: bool,
    /// `total − available` when not covered, else 0.
    pub shortfall: Decimal,
    pub quoted_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuotedTemplate {
    pub id: Uuid,
    pub name: String,
    pub language: String,
    /// The category Meta assigned if it did, else the one the vendor chose.
    pub category_priced: Category,
    /// Quotable whatever the status (a quote is informative); only APPROVED templates send.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuotedList {
    pub id: Uuid,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuotedRateCard {
    pub id: Uuid,
    pub name: String,
    /// The card's own currency (Meta's rates); converted with `fx_rate`.
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub is_sample: bool,
}

/// `members = billable + opted_out + invalid`. An opted-out contact counts as opted out
/// whatever its country; `invalid` = no country, or a country/market the card does not price
/// for the category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RecipientCounts {
    pub members: i64,
    pub billable: i64,
    pub opted_out: i64,
    pub invalid: i64,
}

/// One market's billable recipients and their cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MarketLine {
    pub market: String,
    pub recipients: i64,
    /// The price of one message as the debit path charges it (Meta cost + margin), already
    /// rounded to 4 decimals by the pricing engine.
    pub unit_price: Decimal,
    /// Meta's cost of one message in the wallet's currency (4 decimals).
    pub meta_cost_unit: Decimal,
    /// `unit_price − meta_cost_unit`.
    pub margin_unit: Decimal,
    /// `unit_price × recipients`: exact (no further rounding), because the unit price is
    /// already rounded, so it equals the sum of the debits these messages will post.
    pub subtotal: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuotedWallet {
    pub balance: Decimal,
    pub held: Decimal,
    pub available: Decimal,
}
