//! Stores, vendors and cards for the tests.

use chrono::{DateTime, Utc};
use kloyst_core::VendorId;
use kloyst_pricing::{load_rate_card, NewRateCard, Pricing, RateCardSummary};
use kloyst_testkit::TestStores;
use sqlx::PgPool;
use uuid::Uuid;

/// The card shipped in the repository.
pub const SAMPLE_CARD: &str =
    include_str!("../../../../data/rate-cards/meta-sample-2026-04-01.csv");

pub async fn setup() -> (TestStores, Pricing) {
    let stores = TestStores::new().await;
    let pricing = Pricing::new(stores.pg.clone());
    (stores, pricing)
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

pub fn card(name: &str, effective_from: &str) -> NewRateCard {
    NewRateCard {
        name: name.to_owned(),
        currency: "USD".to_owned(),
        effective_from: at(effective_from),
        source: Some("tests".to_owned()),
        is_sample: true,
    }
}

/// Loads the shipped sample card, effective 2026-04-01.
pub async fn load_sample(pg: &PgPool) -> RateCardSummary {
    load_rate_card(
        pg,
        &card("meta-sample-2026-04-01", "2026-04-01T00:00:00Z"),
        SAMPLE_CARD,
    )
    .await
    .unwrap()
}

/// A vendor on `plan` with its INR wallet (as registration creates it).
pub async fn new_vendor(pg: &PgPool, plan: &str) -> VendorId {
    let vendor: Uuid = sqlx::query_scalar(
        "INSERT INTO vendors (name, plan_type) VALUES ('Acme', $1) RETURNING id",
    )
    .bind(plan)
    .fetch_one(pg)
    .await
    .unwrap();
    sqlx::query("INSERT INTO wallets (vendor_id, currency, balance) VALUES ($1, 'INR', 0)")
        .bind(vendor)
        .execute(pg)
        .await
        .unwrap();
    VendorId::from_uuid(vendor)
}

/// Every country of country_markets.
pub async fn countries(pg: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT country FROM country_markets ORDER BY country")
        .fetch_all(pg)
        .await
        .unwrap()
}

/// Adds a margin row; its id.
pub async fn add_margin(
    pg: &PgPool,
    plan: Option<&str>,
    vendor: Option<VendorId>,
    category: Option<&str>,
    percent: &str,
    fixed: &str,
) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO pricing_margins (plan_type, vendor_id, category, margin_percent,
                                      fixed_per_message, effective_from)
         VALUES ($1, $2, $3, $4::numeric, $5::numeric, '2026-01-01T00:00:00Z') RETURNING id",
    )
    .bind(plan)
    .bind(vendor.map(|v| v.as_uuid()))
    .bind(category)
    .bind(percent)
    .bind(fixed)
    .fetch_one(pg)
    .await
    .unwrap()
}
