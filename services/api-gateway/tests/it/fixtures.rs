//! What the money and campaign tests share: the sample rate card, decimals as the API writes
//! them, a vendor's id, and the problem+json check.

use std::str::FromStr;

use kloyst_core::VendorId;
use kloyst_pricing::{load_rate_card, NewRateCard};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{Api, Response};

const SAMPLE: &str = include_str!("../../../../data/rate-cards/meta-sample-2026-04-01.csv");

/// The shipped SAMPLE card, in force since 2026-04-01.
pub async fn load_sample(api: &Api) {
    let card = NewRateCard {
        name: "meta-sample-2026-04-01".to_owned(),
        currency: "USD".to_owned(),
        effective_from: chrono::DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
        source: None,
        is_sample: true,
    };
    load_rate_card(&api.stores.pg, &card, SAMPLE).await.unwrap();
}

/// A decimal the API wrote as a string.
pub fn dec(value: &Value) -> Decimal {
    Decimal::from_str(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not a string: {value}")),
    )
    .unwrap()
}

pub fn assert_problem(response: &Response, status: StatusCode, code: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(
        response.headers["content-type"], "application/problem+json",
        "{}",
        response.body
    );
    assert_eq!(response.body["code"], code, "{}", response.body);
}

/// The vendor of a registered user.
pub async fn vendor_of(api: &Api, email: &str) -> VendorId {
    let id: Uuid = sqlx::query_scalar("SELECT vendor_id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    VendorId::from_uuid(id)
}

/// `(country, opted_out)` of the members of a list.
pub type Member = (Option<&'static str>, bool);

/// Inserts the contacts directly (numbers start with `prefix`, unique per vendor) and puts
/// them in a new list created through the API. Returns the list id.
pub async fn list_of(
    api: &Api,
    token: &str,
    vendor: VendorId,
    name: &str,
    prefix: &str,
    members: &[Member],
) -> String {
    let mut ids = Vec::new();
    for (n, (country, opted_out)) in members.iter().enumerate() {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO contacts (vendor_id, mobile, country, opted_out, opted_out_at, attributes)
             VALUES ($1, $2, $3, $4, CASE WHEN $4 THEN now() END, '{\"name\": \"Asha\"}')
             RETURNING id",
        )
        .bind(vendor.as_uuid())
        .bind(format!("{prefix}{n:08}"))
        .bind(country)
        .bind(opted_out)
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
        ids.push(id.to_string());
    }
    let created = api
        .post("/v1/contact-lists", Some(token), json!({ "name": name }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let list = created.body["id"].as_str().unwrap().to_owned();
    let added = api
        .post(
            &format!("/v1/contact-lists/{list}/members"),
            Some(token),
            json!({ "contact_ids": ids }),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    list
}
