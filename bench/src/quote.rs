//! The campaign quote's figure: a 100,000-contact list spread over every country the pricing
//! tables know (plus opted-out contacts and contacts without a country), quoted in tenant
//! transactions in both forms (`quote_in`, and the API's table-first form). Target: well
//! under 300 ms per quote.
//!
//! The list is generated in SQL (`generate_series`, one INSERT for the contacts and one for
//! the memberships), then `ANALYZE`d as a live database would be.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use chrono::{DateTime, Utc};
use kloyst_campaigns::{priced_category_in, quote_in, quote_with_table_in, Quote};
use kloyst_core::VendorId;
use kloyst_pricing::{load_rate_card, NewRateCard, Pricing};
use uuid::Uuid;

use crate::stores;

const SAMPLE_CARD: &str = include_str!("../../data/rate-cards/meta-sample-2026-04-01.csv");
const TARGET_MS: f64 = 300.0;

pub async fn run(contacts: i64, runs: usize) -> Result<()> {
    let stores = stores::fresh("kloyst_bench_quote").await?;
    let pg = &stores.pg;
    load_sample_card(pg).await?;
    let (vendor, template, list) = seed(pg, contacts).await?;

    let pricing = Pricing::new(pg.clone());
    for form in [Form::OneTransaction, Form::TableFirst] {
        let mut millis = Vec::with_capacity(runs);
        let mut last = None;
        for _ in 0..runs {
            let started = Instant::now();
            let quote = form.quote(pg, &pricing, vendor, template, list).await?;
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
            last = Some(quote);
        }
        let quote = last.context("--runs must be at least 1")?;
        let counts = quote.recipients;
        ensure!(
            counts.members == contacts,
            "the quote counted {} members of {contacts}",
            counts.members
        );
        ensure!(counts.billable + counts.opted_out + counts.invalid == counts.members);
        let first = millis[0];
        millis.sort_by(|a, b| a.total_cmp(b));
        println!(
            "quote, {} ({contacts} contacts: {} billable in {} markets, {} opted out, {} invalid; total {} {}), {runs} runs: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, first {first:.1} ms (target < {TARGET_MS} ms)",
            form.name(),
            counts.billable,
            quote.markets.len(),
            counts.opted_out,
            counts.invalid,
            quote.total,
            quote.currency,
            percentile(&millis, 0.50),
            percentile(&millis, 0.95),
            millis[millis.len() - 1],
        );
    }
    Ok(())
}

/// The two ways a quote runs.
#[derive(Clone, Copy)]
enum Form {
    /// `quote_in` in one tenant transaction, the price table loading while the list is
    /// counted (the launch's form).
    OneTransaction,
    /// `Quotes::quote`'s form: the category in a short transaction, the price table, then
    /// `quote_with_table_in` in a second one (`begin_tenant`: no user session to check here).
    TableFirst,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Self::OneTransaction => "quote_in",
            Self::TableFirst => "table first + quote_with_table_in",
        }
    }

    async fn quote(
        self,
        pg: &sqlx::PgPool,
        pricing: &Pricing,
        vendor: VendorId,
        template: Uuid,
        list: Uuid,
    ) -> Result<Quote> {
        let at = Utc::now();
        match self {
            Self::OneTransaction => {
                let mut tx = kloyst_db::begin_tenant(pg, vendor).await?;
                let quote = quote_in(&mut tx, pricing, vendor, template, list, at).await?;
                kloyst_db::end_read_only(tx);
                Ok(quote)
            }
            Self::TableFirst => {
                let mut tx = kloyst_db::begin_tenant(pg, vendor).await?;
                let category = priced_category_in(&mut tx, vendor, template).await?;
                kloyst_db::end_read_only(tx);
                let table = pricing.price_table(vendor, category.as_str(), at).await?;
                let mut tx = kloyst_db::begin_tenant(pg, vendor).await?;
                let quote =
                    quote_with_table_in(&mut tx, pricing, &table, vendor, template, list, at)
                        .await?;
                kloyst_db::end_read_only(tx);
                Ok(quote)
            }
        }
    }
}

/// The shipped sample rate card, in force since 2026-04-01.
pub(crate) async fn load_sample_card(pg: &sqlx::PgPool) -> Result<()> {
    let card = NewRateCard {
        name: "meta-sample-2026-04-01".to_owned(),
        currency: "USD".to_owned(),
        effective_from: DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z")?.with_timezone(&Utc),
        source: None,
        is_sample: true,
    };
    load_rate_card(pg, &card, SAMPLE_CARD).await?;
    Ok(())
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A vendor with a wallet, an approved MARKETING template and a list of `contacts` members:
/// a third in India, the rest spread over every country of `country_markets`, 2 % opted out,
/// 1 % without a country.
async fn seed(pg: &sqlx::PgPool, contacts: i64) -> Result<(VendorId, Uuid, Uuid)> {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Bench quote') RETURNING id")
            .fetch_one(pg)
            .await?;
    sqlx::query("INSERT INTO wallets (vendor_id) VALUES ($1)")
        .bind(vendor)
        .execute(pg)
        .await?;
    let template: Uuid = sqlx::query_scalar(
        "INSERT INTO templates (vendor_id, name, language, category, components, meta_name, status)
         VALUES ($1, 'bench_sale', 'en_US', 'MARKETING',
                 '[{\"type\": \"BODY\", \"text\": \"Our sale starts today!\"}]', 'bench_sale',
                 'APPROVED')
         RETURNING id",
    )
    .bind(vendor)
    .fetch_one(pg)
    .await?;
    let list: Uuid = sqlx::query_scalar(
        "INSERT INTO contact_lists (vendor_id, name) VALUES ($1, 'Everyone') RETURNING id",
    )
    .bind(vendor)
    .fetch_one(pg)
    .await?;
    let started = Instant::now();
    sqlx::query(
        "WITH known AS (SELECT array_agg(country ORDER BY country) AS countries FROM country_markets)
         INSERT INTO contacts (vendor_id, mobile, country, opted_out, opted_out_at)
         SELECT $1, (100000000000 + i)::text,
                CASE WHEN i % 100 = 0 THEN NULL
                     WHEN i % 3 = 0 THEN 'IN'
                     ELSE countries[1 + (i * 7919) % cardinality(countries)] END,
                i % 50 = 1, CASE WHEN i % 50 = 1 THEN now() END
           FROM generate_series(1, $2::bigint) AS i, known",
    )
    .bind(vendor)
    .bind(contacts)
    .execute(pg)
    .await?;
    sqlx::query(
        "INSERT INTO contact_list_members (list_id, contact_id, vendor_id)
         SELECT $2, id, vendor_id FROM contacts WHERE vendor_id = $1",
    )
    .bind(vendor)
    .bind(list)
    .execute(pg)
    .await?;
    sqlx::raw_sql("ANALYZE contacts; ANALYZE contact_list_members")
        .execute(pg)
        .await?;
    println!(
        "quote: seeded {contacts} contacts and their list memberships in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok((VendorId::from_uuid(vendor), template, list))
}
