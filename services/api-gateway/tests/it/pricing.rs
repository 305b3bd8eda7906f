//! `GET /v1/pricing/rates`: the caller vendor's own prices on the card in force.

use std::str::FromStr;

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use crate::client::{token, Api};
use crate::fixtures::{dec, load_sample};

fn rate<'a>(body: &'a Value, market: &str, category: &str) -> &'a Value {
    body["rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["market"] == market && r["category"] == category)
        .unwrap_or_else(|| panic!("no {market} {category} in {body}"))
}

#[tokio::test]
async fn answers_the_vendors_own_prices_and_401_without_a_token() {
    let api = Api::start().await;
    load_sample(&api).await;
    let alice = token(&api.onboard("alice@pricing.example", "Alpha").await);
    let bob = token(&api.onboard("bob@pricing.example", "Beta").await);
    // Bob's vendor has its own 5 % margin on marketing.
    let bob_vendor: Uuid =
        sqlx::query_scalar("SELECT vendor_id FROM users WHERE email = 'bob@pricing.example'")
            .fetch_one(&api.stores.pg)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO pricing_margins (vendor_id, category, margin_percent, effective_from)
         VALUES ($1, 'MARKETING', 5, '2026-01-01T00:00:00Z')",
    )
    .bind(bob_vendor)
    .execute(&api.stores.pg)
    .await
    .unwrap();

    let rates = api
        .call(Method::GET, "/v1/pricing/rates", Some(&alice), None)
        .await;
    assert_eq!(rates.status, StatusCode::OK, "{}", rates.body);
    let body = &rates.body;
    assert_eq!(body["rate_card"]["name"], "meta-sample-2026-04-01");
    assert_eq!(body["rate_card"]["currency"], "USD");
    assert_eq!(body["rate_card"]["is_sample"], true);
    assert_eq!(body["wallet_currency"], "INR");
    assert_eq!(dec(&body["fx_rate"]), Decimal::from(88));
    assert_eq!(body["rates"].as_array().unwrap().len(), 98);
    let india = rate(body, "India", "MARKETING");
    assert_eq!(
        dec(&india["meta_rate"]),
        Decimal::from_str("0.0107").unwrap()
    );
    assert_eq!(
        dec(&india["meta_cost"]),
        Decimal::from_str("0.9416").unwrap()
    );
    assert_eq!(dec(&india["margin"]), Decimal::from_str("0.1883").unwrap());
    assert_eq!(dec(&india["total"]), Decimal::from_str("1.1299").unwrap());

    let bobs = api
        .call(Method::GET, "/v1/pricing/rates", Some(&bob), None)
        .await;
    assert_eq!(bobs.status, StatusCode::OK);
    // 0.9416 × 1.05 = 0.98868 → 0.9887; Bob's other categories keep the plan's 20 %.
    assert_eq!(
        dec(&rate(&bobs.body, "India", "MARKETING")["total"]),
        Decimal::from_str("0.9887").unwrap()
    );
    assert_eq!(
        rate(&bobs.body, "India", "UTILITY")["total"],
        rate(body, "India", "UTILITY")["total"]
    );

    let anonymous = api.call(Method::GET, "/v1/pricing/rates", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}
