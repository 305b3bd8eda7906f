//! Prices of the shipped card: every market × category, the same answer from `price` and
//! from the table, effective dates, and the errors a caller must decide about.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Instant;

use kloyst_pricing::{card_csv, load_rate_card, Category, PricingError};
use rust_decimal::Decimal;

use crate::helpers::{at, card, countries, load_sample, new_vendor, setup, SAMPLE_CARD};

const MAY: &str = "2026-05-01T12:00:00Z";

fn dec(raw: &str) -> Decimal {
    Decimal::from_str(raw).unwrap()
}

#[tokio::test]
async fn every_market_and_category_of_the_shipped_card_is_priced_alike_by_price_and_table() {
    let (stores, pricing) = setup().await;
    let loaded = load_sample(&stores.pg).await;
    let vendor = new_vendor(&stores.pg, "SHARED").await;
    let rows = card_csv::parse_card(SAMPLE_CARD).unwrap();
    let countries = countries(&stores.pg).await;
    let mut reached: HashSet<(String, Category)> = HashSet::new();

    for category in Category::ALL {
        let table = pricing
            .price_table(vendor, category.as_str(), at(MAY))
            .await
            .unwrap();
        assert_eq!(table.rate_card_id(), loaded.id);
        for country in &countries {
            let from_table = table.price(country);
            let direct = pricing
                .price(vendor, country, category.as_str(), at(MAY))
                .await;
            match (&from_table, &direct) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{country} {category}");
                    reached.insert((a.market.clone(), category));
                }
                (
                    Err(PricingError::NotPriced { market: a, .. }),
                    Err(PricingError::NotPriced { market: b, .. }),
                ) => assert_eq!(a, b, "{country} {category}"),
                other => panic!("{country} {category}: table and price differ: {other:?}"),
            }
            if category == Category::Marketing {
                assert!(from_table.is_ok(), "{country} has no MARKETING price");
            }
        }
    }
    // Every row of the card is reachable from at least one country, at its own rate.
    for row in &rows {
        assert!(
            reached.contains(&(row.market.clone(), row.category)),
            "no country reaches {} {}",
            row.market,
            row.category
        );
        let table = pricing
            .price_table(vendor, row.category.as_str(), at(MAY))
            .await
            .unwrap();
        let price = table
            .prices()
            .iter()
            .find(|p| p.market == row.market)
            .unwrap();
        assert_eq!(price.meta_rate, row.rate);
    }
}

#[tokio::test]
async fn the_price_converts_adds_the_margin_and_rounds_once() {
    let (stores, pricing) = setup().await;
    let loaded = load_sample(&stores.pg).await;
    let vendor = new_vendor(&stores.pg, "SHARED").await;
    let plan_margin: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM pricing_margins WHERE plan_type = 'SHARED'")
            .fetch_one(&stores.pg)
            .await
            .unwrap();

    // India marketing: 0.0107 USD × 88 = 0.9416 INR; × 1.20 = 1.12992 → 1.1299.
    let india = pricing
        .price(vendor, "in", "marketing", at(MAY))
        .await
        .unwrap();
    assert_eq!(india.market, "India");
    assert_eq!(india.rate_card_id, loaded.id);
    assert_eq!(
        (india.meta_rate, india.rate_currency.as_str()),
        (dec("0.0107"), "USD")
    );
    assert_eq!(india.fx_rate, dec("88"));
    assert_eq!(india.wallet_currency, "INR");
    assert_eq!(india.meta_cost, dec("0.9416"));
    assert_eq!(india.total, dec("1.1299"));
    assert_eq!(india.margin, dec("0.1883"));
    assert_eq!(india.margin_id, Some(plan_margin));

    // Meta's spelling of the category; India has an authentication-international rate:
    // 0.028 × 88 = 2.464; × 1.2 = 2.9568.
    let international = pricing
        .price(vendor, "IN", "authentication-international", at(MAY))
        .await
        .unwrap();
    assert_eq!(
        international.category,
        Category::AuthenticationInternational
    );
    assert_eq!(
        (international.meta_cost, international.total),
        (dec("2.464"), dec("2.9568"))
    );

    // Puerto Rico shares +1 but is priced in Rest of Latin America; Jersey like the UK.
    for (country, market) in [
        ("US", "North America"),
        ("PR", "Rest of Latin America"),
        ("JE", "United Kingdom"),
        ("SG", "Rest of Asia Pacific"),
    ] {
        let price = pricing
            .price(vendor, country, "UTILITY", at(MAY))
            .await
            .unwrap();
        assert_eq!(price.market, market, "{country}");
    }
}

#[tokio::test]
async fn what_meta_does_not_price_is_an_error_not_free() {
    let (stores, pricing) = setup().await;
    load_sample(&stores.pg).await;
    let vendor = new_vendor(&stores.pg, "SHARED").await;
    let table = pricing
        .price_table(vendor, "AUTHENTICATION_INTERNATIONAL", at(MAY))
        .await
        .unwrap();
    for result in [
        pricing
            .price(vendor, "US", "authentication_international", at(MAY))
            .await,
        table.price("US"),
    ] {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, PricingError::NotPriced { market, category }
                if market == "North America" && category == "AUTHENTICATION_INTERNATIONAL"),
            "{error:?}"
        );
    }
    // SERVICE is not on the sample card (free until October 2026): not priced either.
    let service = pricing
        .price(vendor, "IN", "SERVICE", at(MAY))
        .await
        .unwrap_err();
    assert!(
        matches!(service, PricingError::NotPriced { .. }),
        "{service:?}"
    );

    for country in ["ZZ", "India", ""] {
        let unknown = pricing
            .price(vendor, country, "MARKETING", at(MAY))
            .await
            .unwrap_err();
        assert!(
            matches!(unknown, PricingError::UnknownCountry(_)),
            "{unknown:?}"
        );
    }
    assert!(matches!(
        table.price("ZZ"),
        Err(PricingError::UnknownCountry(_))
    ));
    let category = pricing
        .price(vendor, "IN", "PROMO", at(MAY))
        .await
        .unwrap_err();
    assert!(
        matches!(category, PricingError::UnknownCategory(_)),
        "{category:?}"
    );
}

#[tokio::test]
async fn a_newer_card_applies_from_its_date_and_the_old_one_before() {
    let (stores, pricing) = setup().await;
    let april = load_sample(&stores.pg).await;
    let vendor = new_vendor(&stores.pg, "SHARED").await;
    // July 2026: India's marketing rate changes and Singapore is priced on its own.
    let july_text = format!(
        "{SAMPLE_CARD}Singapore,MARKETING,0.0500\nSingapore,UTILITY,0.0150\nSingapore,AUTHENTICATION,0.0150\n"
    )
    .replace("India,MARKETING,0.0107", "India,MARKETING,0.0118");
    let july = load_rate_card(
        &stores.pg,
        &card("july", "2026-07-01T00:00:00Z"),
        &july_text,
    )
    .await
    .unwrap();

    let before = at("2026-06-30T23:59:59Z");
    let from = at("2026-07-01T00:00:00Z");
    let india_before = pricing
        .price(vendor, "IN", "MARKETING", before)
        .await
        .unwrap();
    let india_after = pricing
        .price(vendor, "IN", "MARKETING", from)
        .await
        .unwrap();
    assert_eq!(
        (india_before.rate_card_id, india_before.meta_rate),
        (april.id, dec("0.0107"))
    );
    assert_eq!(
        (india_after.rate_card_id, india_after.meta_rate),
        (july.id, dec("0.0118"))
    );

    for (when, market) in [(before, "Rest of Asia Pacific"), (from, "Singapore")] {
        let direct = pricing
            .price(vendor, "SG", "MARKETING", when)
            .await
            .unwrap();
        let table = pricing
            .price_table(vendor, "MARKETING", when)
            .await
            .unwrap();
        assert_eq!(direct.market, market);
        assert_eq!(table.price("SG").unwrap(), direct);
    }

    let too_early = pricing
        .price(vendor, "IN", "MARKETING", at("2026-03-31T23:59:59Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(&too_early, PricingError::NoRateCard { currency, .. } if currency == "USD"),
        "{too_early:?}"
    );
}

#[tokio::test]
async fn a_missing_fx_rate_is_an_error() {
    let (stores, pricing) = setup().await;
    load_sample(&stores.pg).await;
    let vendor = new_vendor(&stores.pg, "SHARED").await;
    sqlx::query("DELETE FROM fx_rates")
        .execute(&stores.pg)
        .await
        .unwrap();
    let direct = pricing
        .price(vendor, "IN", "MARKETING", at(MAY))
        .await
        .unwrap_err();
    assert!(
        matches!(&direct, PricingError::NoFxRate { base, quote, .. } if base == "USD" && quote == "INR"),
        "{direct:?}"
    );
    let table = pricing
        .price_table(vendor, "MARKETING", at(MAY))
        .await
        .err();
    assert!(matches!(table, Some(PricingError::NoFxRate { .. })));

    // A newer rate applies from its own instant on.
    sqlx::query(
        "INSERT INTO fx_rates (base_currency, quote_currency, rate, effective_from)
         VALUES ('USD', 'INR', 85, '2026-05-01T00:00:00Z'), ('USD', 'INR', 90, '2026-06-01T00:00:00Z')",
    )
    .execute(&stores.pg)
    .await
    .unwrap();
    let may = pricing
        .price(vendor, "IN", "MARKETING", at(MAY))
        .await
        .unwrap();
    let june = pricing
        .price(vendor, "IN", "MARKETING", at("2026-06-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!((may.fx_rate, june.fx_rate), (dec("85"), dec("90")));
}

/// Quote-sized: 100,000 recipients priced from one table. Prints the time taken.
#[tokio::test]
async fn pricing_100k_recipients_from_the_table_is_fast() {
    let (stores, pricing) = setup().await;
    load_sample(&stores.pg).await;
    let vendor = new_vendor(&stores.pg, "SHARED").await;
    let countries = countries(&stores.pg).await;
    let recipients: Vec<&str> = countries
        .iter()
        .map(String::as_str)
        .cycle()
        .take(100_000)
        .collect();

    let started = Instant::now();
    let table = pricing
        .price_table(vendor, "MARKETING", at(MAY))
        .await
        .unwrap();
    let loaded = started.elapsed();
    let mut by_market: HashMap<String, (u64, Decimal)> = HashMap::new();
    for country in &recipients {
        let price = table.price(country).unwrap();
        let entry = by_market.entry(price.market).or_default();
        entry.0 += 1;
        entry.1 += price.total;
    }
    let total = started.elapsed();
    println!(
        "priced 100000 recipients: table loaded in {loaded:?}, {total:?} in all ({} markets)",
        by_market.len()
    );
    assert_eq!(by_market.values().map(|(n, _)| n).sum::<u64>(), 100_000);
    assert!(
        total.as_millis() < 3000,
        "far over the 300 ms quote target: {total:?}"
    );
}
