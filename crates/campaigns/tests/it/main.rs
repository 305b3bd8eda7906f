//! `quote_in` and `quote_with_table_in` inside tenant transactions, against the real
//! Postgres (a fresh, migrated database per test) with the shipped sample card loaded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

use chrono::{DateTime, Utc};
use kloyst_campaigns::{priced_category_in, quote_in, quote_with_table_in, QuoteError};
use kloyst_core::VendorId;
use kloyst_pricing::{load_rate_card, Category, NewRateCard, Pricing};
use kloyst_testkit::TestStores;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

const SAMPLE: &str = include_str!("../../../../data/rate-cards/meta-sample-2026-04-01.csv");
/// Billable: IN ×2, US, BR; excluded: an opted-out DE and one without a country.
const CONTACTS: [(Option<&str>, bool); 6] = [
    (Some("IN"), false),
    (Some("IN"), false),
    (Some("US"), false),
    (Some("BR"), false),
    (Some("DE"), true),
    (None, false),
];

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn load_sample(pg: &PgPool) {
    let card = NewRateCard {
        name: "meta-sample-2026-04-01".to_owned(),
        currency: "USD".to_owned(),
        effective_from: DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        source: None,
        is_sample: true,
    };
    load_rate_card(pg, &card, SAMPLE).await.unwrap();
}

struct Fixture {
    vendor: VendorId,
    template: Uuid,
    list: Uuid,
}

/// A vendor with a wallet, a MARKETING template (`meta_category` as given) and a list of
/// [`CONTACTS`], written with the pool's own role.
async fn vendor_with_list(pg: &PgPool, name: &str, meta_category: Option<&str>) -> Fixture {
    let vendor: Uuid = sqlx::query_scalar("INSERT INTO vendors (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(pg)
        .await
        .unwrap();
    sqlx::query("INSERT INTO wallets (vendor_id) VALUES ($1)")
        .bind(vendor)
        .execute(pg)
        .await
        .unwrap();
    let template: Uuid = sqlx::query_scalar(
        "INSERT INTO templates (vendor_id, name, language, category, meta_category, components,
                                meta_name, status)
         VALUES ($1, 'sale', 'en_US', 'MARKETING', $2,
                 '[{\"type\": \"BODY\", \"text\": \"Our sale starts today!\"}]', $3, 'APPROVED')
         RETURNING id",
    )
    .bind(vendor)
    .bind(meta_category)
    .bind(format!("sale_{}", vendor.simple()))
    .fetch_one(pg)
    .await
    .unwrap();
    let list: Uuid = sqlx::query_scalar(
        "INSERT INTO contact_lists (vendor_id, name) VALUES ($1, 'Everyone') RETURNING id",
    )
    .bind(vendor)
    .fetch_one(pg)
    .await
    .unwrap();
    for (n, (country, opted_out)) in CONTACTS.iter().enumerate() {
        sqlx::query(
            "WITH c AS (
                 INSERT INTO contacts (vendor_id, mobile, country, opted_out, opted_out_at)
                 VALUES ($1, $2, $3, $4, CASE WHEN $4 THEN now() END) RETURNING id)
             INSERT INTO contact_list_members (list_id, contact_id, vendor_id)
             SELECT $5, id, $1 FROM c",
        )
        .bind(vendor)
        .bind(format!("4470000{n:05}"))
        .bind(country)
        .bind(opted_out)
        .bind(list)
        .execute(pg)
        .await
        .unwrap();
    }
    Fixture {
        vendor: VendorId::from_uuid(vendor),
        template,
        list,
    }
}

/// Σ over the billable contacts of the debit path's price of one message.
async fn debit_path_total(pricing: &Pricing, vendor: VendorId, category: &str) -> Decimal {
    let mut total = Decimal::ZERO;
    for (country, opted_out) in CONTACTS {
        if let (Some(country), false) = (country, opted_out) {
            total += pricing
                .price(vendor, country, category, at())
                .await
                .unwrap()
                .total;
        }
    }
    total
}

#[tokio::test]
async fn both_forms_agree_and_price_what_meta_assigned() {
    let stores = TestStores::new().await;
    load_sample(&stores.pg).await;
    let pricing = Pricing::new(stores.pg.clone());
    let f = vendor_with_list(&stores.pg, "Alpha", Some("UTILITY")).await;

    let mut tx = kloyst_db::begin_tenant(&stores.pg, f.vendor).await.unwrap();
    let category = priced_category_in(&mut tx, f.vendor, f.template)
        .await
        .unwrap();
    assert_eq!(category, Category::Utility);
    let direct = quote_in(&mut tx, &pricing, f.vendor, f.template, f.list, at())
        .await
        .unwrap();
    kloyst_db::end_read_only(tx);
    assert_eq!(direct.template.category_priced, Category::Utility);
    assert_eq!(direct.recipients.members, 6);
    assert_eq!(direct.recipients.billable, 4);
    assert_eq!(direct.recipients.opted_out, 1);
    assert_eq!(direct.recipients.invalid, 1);
    assert_eq!(
        direct.total,
        debit_path_total(&pricing, f.vendor, "UTILITY").await
    );
    assert_eq!(direct.quoted_at, at());

    // A table of the right category is used as given; one of a stale category (Meta
    // re-categorised the template after it was loaded) is replaced: same quote either way.
    for loaded in ["UTILITY", "MARKETING"] {
        let table = pricing.price_table(f.vendor, loaded, at()).await.unwrap();
        let mut tx = kloyst_db::begin_tenant(&stores.pg, f.vendor).await.unwrap();
        let prepared = quote_with_table_in(
            &mut tx,
            &pricing,
            &table,
            f.vendor,
            f.template,
            f.list,
            at(),
        )
        .await
        .unwrap();
        kloyst_db::end_read_only(tx);
        assert_eq!(prepared, direct, "table loaded for {loaded}");
    }
}

#[tokio::test]
async fn another_vendors_rows_are_not_found_even_when_the_caller_names_that_vendor() {
    let stores = TestStores::new().await;
    load_sample(&stores.pg).await;
    let pricing = Pricing::new(stores.pg.clone());
    let alpha = vendor_with_list(&stores.pg, "Alpha", None).await;
    let beta = vendor_with_list(&stores.pg, "Beta", None).await;

    let mut tx = kloyst_db::begin_tenant(&stores.pg, alpha.vendor)
        .await
        .unwrap();
    let their_list = quote_in(
        &mut tx,
        &pricing,
        alpha.vendor,
        alpha.template,
        beta.list,
        at(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(their_list, QuoteError::ListNotFound),
        "{their_list:?}"
    );
    let their_template = quote_in(
        &mut tx,
        &pricing,
        alpha.vendor,
        beta.template,
        alpha.list,
        at(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(their_template, QuoteError::TemplateNotFound),
        "{their_template:?}"
    );
    // RLS is the second wall: alpha's transaction cannot see beta's rows even when asked
    // for them under beta's id.
    let disguised = quote_in(
        &mut tx,
        &pricing,
        beta.vendor,
        beta.template,
        beta.list,
        at(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(disguised, QuoteError::TemplateNotFound),
        "{disguised:?}"
    );
    kloyst_db::end_read_only(tx);
}

#[tokio::test]
async fn before_any_card_is_in_force_the_quote_is_refused_with_no_rate_card() {
    let stores = TestStores::new().await;
    load_sample(&stores.pg).await;
    let pricing = Pricing::new(stores.pg.clone());
    let f = vendor_with_list(&stores.pg, "Alpha", None).await;
    let before_the_card = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut tx = kloyst_db::begin_tenant(&stores.pg, f.vendor).await.unwrap();
    let refused = quote_in(
        &mut tx,
        &pricing,
        f.vendor,
        f.template,
        f.list,
        before_the_card,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, QuoteError::PricingUnavailable(_)),
        "{refused:?}"
    );
    assert_eq!(kloyst_core::DomainError::code(&refused), "no_rate_card");
    assert_eq!(
        kloyst_core::DomainError::class(&refused),
        kloyst_core::ErrorClass::Conflict
    );
}
