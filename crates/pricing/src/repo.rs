//! The SQL of the pricing engine. Functions take `impl PgExecutor` so the loader can run
//! them inside its transaction.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::model::RateCardSummary;

/// Meta's cards are published in many currencies; when none is loaded in the wallet's
/// currency, the USD card (Meta's reference card) applies and is converted.
pub(crate) const FALLBACK_CARD_CURRENCY: &str = "USD";

#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct CardInForce {
    pub id: Uuid,
    pub name: String,
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub is_sample: bool,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct Margin {
    pub margin_id: Uuid,
    pub margin_percent: Decimal,
    pub fixed_per_message: Decimal,
    pub currency: String,
}

pub(crate) async fn wallet_currency(
    db: impl PgExecutor<'_>,
    vendor: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT currency FROM wallets WHERE vendor_id = $1")
        .bind(vendor)
        .fetch_optional(db)
        .await
}

/// The card in force at `at`: one in the wallet's currency if loaded, else the USD card.
pub(crate) async fn card_in_force(
    db: impl PgExecutor<'_>,
    wallet_currency: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<CardInForce>> {
    sqlx::query_as(
        "SELECT id, name, currency, effective_from, is_sample FROM rate_cards
         WHERE id = coalesce(rate_card_at($1, $3), rate_card_at($2, $3))",
    )
    .bind(wallet_currency)
    .bind(FALLBACK_CARD_CURRENCY)
    .bind(at)
    .fetch_optional(db)
    .await
}

/// 1 `base` = rate `quote`, the latest rate effective at `at`.
pub(crate) async fn fx_rate(
    db: impl PgExecutor<'_>,
    base: &str,
    quote: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<Decimal>> {
    sqlx::query_scalar(
        "SELECT rate FROM fx_rates
         WHERE base_currency = $1 AND quote_currency = $2 AND effective_from <= $3
         ORDER BY effective_from DESC LIMIT 1",
    )
    .bind(base)
    .bind(quote)
    .bind(at)
    .fetch_optional(db)
    .await
}

pub(crate) async fn margin_for(
    db: impl PgExecutor<'_>,
    vendor: Uuid,
    category: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<Margin>> {
    sqlx::query_as(
        "SELECT margin_id, margin_percent, fixed_per_message, currency
         FROM pricing_margin_for($1, $2, $3)",
    )
    .bind(vendor)
    .bind(category)
    .bind(at)
    .fetch_optional(db)
    .await
}

pub(crate) async fn country_exists(db: impl PgExecutor<'_>, country: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM country_markets WHERE country = $1)")
        .bind(country)
        .fetch_one(db)
        .await
}

/// The country's market on the card and Meta's rate there for the category (NULL: not priced).
pub(crate) async fn market_rate(
    db: impl PgExecutor<'_>,
    card: Uuid,
    country: &str,
    category: &str,
) -> sqlx::Result<(String, Option<Decimal>)> {
    sqlx::query_as(
        "SELECT m.market, e.rate
         FROM (SELECT rate_card_market($1, $2) AS market) m
         LEFT JOIN rate_card_entries e
           ON e.rate_card_id = $1 AND e.market = m.market AND e.category = $3",
    )
    .bind(card)
    .bind(country)
    .bind(category)
    .fetch_one(db)
    .await
}

/// Every country: (country, reference market, standalone market).
pub(crate) async fn country_markets(
    db: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<(String, String, Option<String>)>> {
    sqlx::query_as("SELECT country, market, standalone_market FROM country_markets")
        .fetch_all(db)
        .await
}

/// Every entry of a card: (market, category, rate).
pub(crate) async fn card_entries(
    db: impl PgExecutor<'_>,
    card: Uuid,
) -> sqlx::Result<Vec<(String, String, Decimal)>> {
    sqlx::query_as(
        "SELECT market, category, rate FROM rate_card_entries WHERE rate_card_id = $1
         ORDER BY market, category",
    )
    .bind(card)
    .fetch_all(db)
    .await
}

pub(crate) async fn market_names(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT name FROM markets")
        .fetch_all(db)
        .await
}

pub(crate) async fn card_name_taken(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rate_cards WHERE name = $1)")
        .bind(name)
        .fetch_one(db)
        .await
}

/// Ends the card of that currency in force at `from` (if it started earlier) at `from`.
pub(crate) async fn close_previous_card(
    db: impl PgExecutor<'_>,
    currency: &str,
    from: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE rate_cards SET effective_to = $2
         WHERE currency = $1 AND effective_from < $2 AND (effective_to IS NULL OR effective_to > $2)",
    )
    .bind(currency)
    .bind(from)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// The start of the next card of that currency after `from`: where a card loaded out of
/// order must end.
pub(crate) async fn next_card_start(
    db: impl PgExecutor<'_>,
    currency: &str,
    from: DateTime<Utc>,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "SELECT min(effective_from) FROM rate_cards WHERE currency = $1 AND effective_from > $2",
    )
    .bind(currency)
    .bind(from)
    .fetch_one(db)
    .await
}

pub(crate) async fn insert_card(
    db: impl PgExecutor<'_>,
    card: &crate::NewRateCard,
    effective_to: Option<DateTime<Utc>>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO rate_cards (name, currency, effective_from, effective_to, source, is_sample)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&card.name)
    .bind(&card.currency)
    .bind(card.effective_from)
    .bind(effective_to)
    .bind(&card.source)
    .bind(card.is_sample)
    .fetch_one(db)
    .await
}

pub(crate) async fn insert_entries(
    db: impl PgExecutor<'_>,
    card: Uuid,
    markets: &[String],
    categories: &[String],
    rates: &[Decimal],
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "INSERT INTO rate_card_entries (rate_card_id, market, category, rate)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::numeric[])",
    )
    .bind(card)
    .bind(markets)
    .bind(categories)
    .bind(rates)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn list_cards(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<RateCardSummary>> {
    sqlx::query_as(
        "SELECT c.id, c.name, c.currency, c.effective_from, c.effective_to, c.is_sample, c.source,
                (SELECT count(*) FROM rate_card_entries e WHERE e.rate_card_id = c.id) AS entries
         FROM rate_cards c ORDER BY c.currency, c.effective_from",
    )
    .fetch_all(db)
    .await
}

pub(crate) async fn card_summary(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<RateCardSummary> {
    sqlx::query_as(
        "SELECT c.id, c.name, c.currency, c.effective_from, c.effective_to, c.is_sample, c.source,
                (SELECT count(*) FROM rate_card_entries e WHERE e.rate_card_id = c.id) AS entries
         FROM rate_cards c WHERE c.id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
}
