//! The pricing engine: what one delivered template message costs a vendor.
//!
//! - [`card_csv`]: Meta's rate cards (market × category → rate, in the card's currency) are
//!   parsed from a CSV and loaded as effective-dated rows; a bad file loads nothing.
//! - [`Pricing`]: `price(vendor, country, category, at)` resolves the card in force, the
//!   country's market on that card, the FX rate to the wallet's currency and the vendor's
//!   margin, and rounds once (see [`engine::round_money`]). [`Pricing::price_table`] loads the
//!   same inputs once so a quote prices each recipient with a map lookup.
//!
//! Reference data (markets, country_markets, rate_cards, fx_rates) is read with the pool's
//! own role: it is not tenant data. The vendor id comes from the authenticated caller.

pub mod card_csv;
pub mod engine;
mod error;
pub mod model;
mod repo;

pub use card_csv::{list_rate_cards, load_rate_card, parse_card};
pub use engine::{PriceTable, Pricing};
pub use error::{CardLineError, PricingError};
pub use model::{Category, NewRateCard, Price, RateCardSummary, RateLine, RateSheet};
