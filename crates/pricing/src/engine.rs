//! The price of one message, and the table a quote prices its recipients from.
//!
//! Rounding (docs/DATA_MODEL.md): in the wallet's currency,
//! `meta_cost = round(meta_rate × fx, 4)` and
//! `total = round(meta_rate × fx × (1 + margin_percent/100) + fixed_per_message, 4)`,
//! half away from zero like Postgres' `round`; `margin = total − meta_cost`. The quote, the
//! hold and the debit all use these figures, so they never drift apart.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use kloyst_core::VendorId;
use rust_decimal::{Decimal, RoundingStrategy};
use sqlx::PgPool;

use crate::model::{Category, Price, RateLine, RateSheet, RateSheetCard};
use crate::repo::{self, CardInForce, Margin};
use crate::PricingError;

const MONEY_DP: u32 = 4;

/// Rounds an amount of money to the 4 decimals we store, half away from zero.
pub fn round_money(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(MONEY_DP, RoundingStrategy::MidpointAwayFromZero)
}

#[derive(Clone)]
pub struct Pricing {
    pg: PgPool,
}

impl Pricing {
    pub fn new(pg: PgPool) -> Self {
        Self { pg }
    }

    /// The price of one `category` message delivered to a number of `country` (ISO alpha-2)
    /// at `at`, through the SQL helpers (`rate_card_at`, `rate_card_market`,
    /// `pricing_margin_for`).
    pub async fn price(
        &self,
        vendor: VendorId,
        country: &str,
        category: &str,
        at: DateTime<Utc>,
    ) -> Result<Price, PricingError> {
        let category = Category::parse(category)?;
        let inputs = self.inputs(vendor, category, at).await?;
        let country = normalise_country(country)?;
        if !repo::country_exists(&self.pg, &country).await? {
            return Err(PricingError::UnknownCountry(country));
        }
        let (market, rate) =
            repo::market_rate(&self.pg, inputs.card.id, &country, category.as_str()).await?;
        match rate {
            Some(rate) => Ok(inputs.price(market, category, rate)),
            None => Err(PricingError::NotPriced {
                market,
                category: category.as_str().to_owned(),
            }),
        }
    }

    /// Everything needed to price any country for `category` at `at`, loaded in six queries.
    pub async fn price_table(
        &self,
        vendor: VendorId,
        category: &str,
        at: DateTime<Utc>,
    ) -> Result<PriceTable, PricingError> {
        let category = Category::parse(category)?;
        let inputs = self.inputs(vendor, category, at).await?;
        let entries = repo::card_entries(&self.pg, inputs.card.id).await?;
        let countries = repo::country_markets(&self.pg).await?;
        Ok(PriceTable::build(inputs, category, &entries, countries))
    }

    /// The vendor's own prices on the card in force at `at`: every market × category the
    /// card prices (`GET /v1/pricing/rates`).
    pub async fn rate_sheet(
        &self,
        vendor: VendorId,
        at: DateTime<Utc>,
    ) -> Result<RateSheet, PricingError> {
        // Marketing first: its table also gives the card, FX and currency every table shares.
        let first = self
            .price_table(vendor, Category::Marketing.as_str(), at)
            .await?;
        let mut tables = vec![first];
        for category in Category::ALL.into_iter().skip(1) {
            tables.push(self.price_table(vendor, category.as_str(), at).await?);
        }
        let inputs = &tables[0].inputs;
        let mut rates: Vec<RateLine> = tables
            .iter()
            .flat_map(|table| table.prices().iter().map(RateLine::from))
            .collect();
        rates.sort_by(|a, b| (&a.market, a.category as u8).cmp(&(&b.market, b.category as u8)));
        Ok(RateSheet {
            rate_card: RateSheetCard {
                name: inputs.card.name.clone(),
                currency: inputs.card.currency.clone(),
                effective_from: inputs.card.effective_from,
                is_sample: inputs.card.is_sample,
            },
            wallet_currency: inputs.wallet_currency.clone(),
            fx_rate: inputs.fx_rate,
            rates,
        })
    }

    /// The wallet's currency, the card in force, the FX rate and the margin: what every
    /// price of one vendor, category and instant shares.
    async fn inputs(
        &self,
        vendor: VendorId,
        category: Category,
        at: DateTime<Utc>,
    ) -> Result<Inputs, PricingError> {
        let wallet_currency = repo::wallet_currency(&self.pg, vendor.as_uuid())
            .await?
            .ok_or(PricingError::NoWallet)?;
        let card = repo::card_in_force(&self.pg, &wallet_currency, at)
            .await?
            .ok_or_else(|| PricingError::NoRateCard {
                currency: repo::FALLBACK_CARD_CURRENCY.to_owned(),
                at,
            })?;
        let fx_rate = if card.currency == wallet_currency {
            Decimal::ONE
        } else {
            repo::fx_rate(&self.pg, &card.currency, &wallet_currency, at)
                .await?
                .ok_or_else(|| PricingError::NoFxRate {
                    base: card.currency.clone(),
                    quote: wallet_currency.clone(),
                    at,
                })?
        };
        let margin = repo::margin_for(&self.pg, vendor.as_uuid(), category.as_str(), at)
            .await?
            .ok_or_else(|| PricingError::NoMargin {
                category: category.as_str().to_owned(),
                at,
            })?;
        if margin.fixed_per_message != Decimal::ZERO && margin.currency != wallet_currency {
            return Err(PricingError::MarginCurrency {
                margin_currency: margin.currency,
                wallet_currency,
            });
        }
        Ok(Inputs {
            wallet_currency,
            card,
            fx_rate,
            margin,
        })
    }
}

struct Inputs {
    wallet_currency: String,
    card: CardInForce,
    fx_rate: Decimal,
    margin: Margin,
}

impl Inputs {
    fn price(&self, market: String, category: Category, meta_rate: Decimal) -> Price {
        let exact_cost = meta_rate * self.fx_rate;
        let meta_cost = round_money(exact_cost);
        let markup = Decimal::ONE + self.margin.margin_percent / Decimal::ONE_HUNDRED;
        let total = round_money(exact_cost * markup + self.margin.fixed_per_message);
        Price {
            market,
            category,
            rate_card_id: self.card.id,
            meta_rate,
            rate_currency: self.card.currency.clone(),
            fx_rate: self.fx_rate,
            wallet_currency: self.wallet_currency.clone(),
            meta_cost,
            margin: total - meta_cost,
            total,
            margin_id: Some(self.margin.margin_id),
        }
    }
}

/// Where a country lands on the table's card.
enum CountryPrice {
    Priced(usize),
    NotPriced(String),
}

/// One vendor's prices for one category at one instant: a country is priced by a map lookup.
pub struct PriceTable {
    inputs: Inputs,
    category: Category,
    /// One per market the card prices for the category, sorted by market.
    prices: Vec<Price>,
    by_country: HashMap<String, CountryPrice>,
}

impl PriceTable {
    fn build(
        inputs: Inputs,
        category: Category,
        entries: &[(String, String, Decimal)],
        countries: Vec<(String, String, Option<String>)>,
    ) -> Self {
        // Like rate_card_market(): a standalone market applies once the card has entries for it.
        let markets_on_card: HashSet<&str> = entries.iter().map(|(m, _, _)| m.as_str()).collect();
        let prices: Vec<Price> = entries
            .iter()
            .filter(|(_, c, _)| c == category.as_str())
            .map(|(market, _, rate)| inputs.price(market.clone(), category, *rate))
            .collect();
        let index: HashMap<&str, usize> = prices
            .iter()
            .enumerate()
            .map(|(i, price)| (price.market.as_str(), i))
            .collect();
        let by_country = countries
            .into_iter()
            .map(|(country, market, standalone)| {
                let market = match standalone {
                    Some(own) if markets_on_card.contains(own.as_str()) => own,
                    _ => market,
                };
                let entry = match index.get(market.as_str()) {
                    Some(&i) => CountryPrice::Priced(i),
                    None => CountryPrice::NotPriced(market),
                };
                (country, entry)
            })
            .collect();
        Self {
            inputs,
            category,
            prices,
            by_country,
        }
    }

    /// The price of one message to a number of `country` (ISO alpha-2).
    pub fn price(&self, country: &str) -> Result<Price, PricingError> {
        let entry = match self.by_country.get(country) {
            Some(entry) => Some(entry),
            None => self.by_country.get(&normalise_country(country)?),
        };
        match entry {
            Some(CountryPrice::Priced(i)) => Ok(self.prices[*i].clone()),
            Some(CountryPrice::NotPriced(market)) => Err(PricingError::NotPriced {
                market: market.clone(),
                category: self.category.as_str().to_owned(),
            }),
            None => Err(PricingError::UnknownCountry(country.to_owned())),
        }
    }

    /// One price per market the card prices for this category, sorted by market.
    pub fn prices(&self) -> &[Price] {
        &self.prices
    }

    pub fn category(&self) -> Category {
        self.category
    }

    pub fn rate_card_id(&self) -> uuid::Uuid {
        self.inputs.card.id
    }

    pub fn rate_card_name(&self) -> &str {
        &self.inputs.card.name
    }

    pub fn wallet_currency(&self) -> &str {
        &self.inputs.wallet_currency
    }

    pub fn fx_rate(&self) -> Decimal {
        self.inputs.fx_rate
    }
}

fn normalise_country(raw: &str) -> Result<String, PricingError> {
    let country = raw.trim().to_ascii_uppercase();
    if country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(country)
    } else {
        Err(PricingError::UnknownCountry(raw.to_owned()))
    }
}
