//! Which margin applies: vendor override over plan, category-specific over all-categories,
//! and no guess when none is configured.

use std::str::FromStr;

use kloyst_pricing::PricingError;
use rust_decimal::Decimal;

use crate::helpers::{add_margin, at, load_sample, new_vendor, setup};

const MAY: &str = "2026-05-01T12:00:00Z";

fn dec(raw: &str) -> Decimal {
    Decimal::from_str(raw).unwrap()
}

#[tokio::test]
async fn a_vendor_override_beats_the_plan_and_a_category_row_beats_all_categories() {
    let (stores, pricing) = setup().await;
    load_sample(&stores.pg).await;
    let vendor = new_vendor(&stores.pg, "SHARED").await;
    let other = new_vendor(&stores.pg, "SHARED").await;
    // The plan's own UTILITY margin (30 %) is beaten by the vendor's all-categories 10 %.
    let plan_utility =
        add_margin(&stores.pg, Some("SHARED"), None, Some("UTILITY"), "30", "0").await;
    let vendor_all = add_margin(&stores.pg, None, Some(vendor), None, "10", "0").await;
    let vendor_marketing = add_margin(
        &stores.pg,
        None,
        Some(vendor),
        Some("MARKETING"),
        "5",
        "0.05",
    )
    .await;

    // India marketing: 0.9416 INR × 1.05 + 0.05 = 1.03868 → 1.0387.
    let marketing = pricing
        .price(vendor, "IN", "MARKETING", at(MAY))
        .await
        .unwrap();
    assert_eq!(marketing.margin_id, Some(vendor_marketing));
    assert_eq!(
        (marketing.meta_cost, marketing.total),
        (dec("0.9416"), dec("1.0387"))
    );
    assert_eq!(marketing.margin, dec("0.0971"));

    // India utility: 0.0013 × 88 = 0.1144; × 1.10 = 0.12584 → 0.1258.
    let utility = pricing
        .price(vendor, "IN", "UTILITY", at(MAY))
        .await
        .unwrap();
    assert_eq!(utility.margin_id, Some(vendor_all));
    assert_eq!(utility.total, dec("0.1258"));

    // The other vendor: the plan's UTILITY row (30 %) beats the plan's all-categories 20 %.
    let other_utility = pricing
        .price(other, "IN", "UTILITY", at(MAY))
        .await
        .unwrap();
    assert_eq!(other_utility.margin_id, Some(plan_utility));
    assert_eq!(other_utility.total, dec("0.1487"));
    let other_marketing = pricing
        .price(other, "IN", "MARKETING", at(MAY))
        .await
        .unwrap();
    assert_eq!(other_marketing.total, dec("1.1299"));

    // The table applies the same margin.
    let table = pricing
        .price_table(vendor, "MARKETING", at(MAY))
        .await
        .unwrap();
    assert_eq!(table.price("IN").unwrap(), marketing);
}

#[tokio::test]
async fn no_margin_configured_is_an_error_never_a_guess() {
    let (stores, pricing) = setup().await;
    load_sample(&stores.pg).await;
    // The seed configures the SHARED plan only.
    let dedicated = new_vendor(&stores.pg, "DEDICATED").await;
    let error = pricing
        .price(dedicated, "IN", "MARKETING", at(MAY))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PricingError::NoMargin { category, .. } if category == "MARKETING"),
        "{error:?}"
    );
    assert!(matches!(
        pricing
            .price_table(dedicated, "MARKETING", at(MAY))
            .await
            .err(),
        Some(PricingError::NoMargin { .. })
    ));
    add_margin(&stores.pg, None, Some(dedicated), None, "0", "0.10").await;
    let priced = pricing
        .price(dedicated, "IN", "MARKETING", at(MAY))
        .await
        .unwrap();
    assert_eq!(
        (priced.meta_cost, priced.total, priced.margin),
        (dec("0.9416"), dec("1.0416"), dec("0.1"))
    );
}
