//! `POST /v1/campaigns/quote`: recipients counted by market, priced exactly as the debit path
//! prices one message, compared with the wallet; another vendor's template or list is a 404.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::Utc;
use kloyst_billing::{Credit, CreditKind, Ledger};
use kloyst_core::VendorId;
use kloyst_pricing::Pricing;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{token, Api, Response};
use crate::fixtures::{assert_problem, dec, list_of, load_sample, vendor_of, Member};

const MISSING: &str = "00000000-0000-4000-8000-000000000000";

/// A template created through the API (PENDING), then given a status and Meta's category
/// directly, as Meta's status webhook would.
async fn template(
    api: &Api,
    token: &str,
    name: &str,
    category: &str,
    meta_category: Option<&str>,
    status: &str,
) -> String {
    let created = api
        .post(
            "/v1/templates",
            Some(token),
            json!({
                "name": name,
                "language": "en_US",
                "category": category,
                "components": [
                    { "type": "BODY", "text": "Hi {{1}}, our sale starts today!",
                      "example": { "body_text": [["Asha"]] } }
                ]
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE templates SET status = $2, meta_category = $3 WHERE id = $1::uuid")
        .bind(&id)
        .bind(status)
        .bind(meta_category)
        .execute(&api.stores.pg)
        .await
        .unwrap();
    id
}

const fn member(country: &'static str) -> Member {
    (Some(country), false)
}

/// IN ×3, BR ×2, US ×2 + CA ×1 (one market: North America), DE, NG; excluded: an opted-out
/// IN, a contact without a country and one whose country no market knows.
const MEMBERS: [Member; 13] = [
    member("IN"),
    member("IN"),
    member("IN"),
    member("BR"),
    member("BR"),
    member("US"),
    member("US"),
    member("CA"),
    member("DE"),
    member("NG"),
    (Some("IN"), true),
    (None, false),
    member("XX"),
];

async fn quote(api: &Api, token: &str, template: &str, list: &str) -> Response {
    api.post(
        "/v1/campaigns/quote",
        Some(token),
        json!({ "template_id": template, "list_id": list }),
    )
    .await
}

/// The debit path's price of one message to each billable member, summed per market and in
/// all, computed one contact at a time with `Pricing::price`.
async fn expected(
    api: &Api,
    vendor: VendorId,
    category: &str,
) -> (BTreeMap<String, (i64, Decimal)>, Decimal) {
    let pricing = Pricing::new(api.stores.pg.clone());
    let now = Utc::now();
    let mut by_market: BTreeMap<String, (i64, Decimal)> = BTreeMap::new();
    let mut total = Decimal::ZERO;
    for (country, _) in MEMBERS.iter().filter(|(_, opted_out)| !opted_out) {
        let Some(country) = country else { continue };
        let Ok(price) = pricing.price(vendor, country, category, now).await else {
            continue;
        };
        let line = by_market.entry(price.market).or_default();
        line.0 += 1;
        line.1 += price.total;
        total += price.total;
    }
    (by_market, total)
}

fn markets(body: &Value) -> BTreeMap<String, (i64, Decimal)> {
    body["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            let recipients = line["recipients"].as_i64().unwrap();
            let unit = dec(&line["unit_price"]);
            assert_eq!(dec(&line["subtotal"]), unit * Decimal::from(recipients));
            assert_eq!(
                dec(&line["meta_cost_unit"]) + dec(&line["margin_unit"]),
                unit
            );
            (
                line["market"].as_str().unwrap().to_owned(),
                (recipients, dec(&line["subtotal"])),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_list_is_quoted_by_market_at_the_debit_paths_prices() {
    let api = Api::start().await;
    load_sample(&api).await;
    let t = token(&api.onboard("ada@quote.example", "Alpha").await);
    let vendor = vendor_of(&api, "ada@quote.example").await;
    let template = template(&api, &t, "diwali_sale", "MARKETING", None, "APPROVED").await;
    let list = list_of(&api, &t, vendor, "Everyone", "55", &MEMBERS).await;

    let quoted = quote(&api, &t, &template, &list).await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.body);
    let body = &quoted.body;
    assert_eq!(body["template"]["id"], template.as_str());
    assert_eq!(body["template"]["name"], "diwali_sale");
    assert_eq!(body["template"]["language"], "en_US");
    assert_eq!(body["template"]["category_priced"], "MARKETING");
    assert_eq!(body["template"]["status"], "APPROVED");
    assert_eq!(body["list"]["id"], list.as_str());
    assert_eq!(body["list"]["name"], "Everyone");
    assert_eq!(body["rate_card"]["name"], "meta-sample-2026-04-01");
    assert_eq!(body["rate_card"]["is_sample"], true);
    assert_eq!(body["rate_card"]["effective_from"], "2026-04-01T00:00:00Z");
    assert_eq!(body["currency"], "INR");
    assert_eq!(dec(&body["fx_rate"]), Decimal::from(88));
    assert_eq!(
        body["recipients"],
        json!({ "members": 13, "billable": 10, "opted_out": 1, "invalid": 2 })
    );

    let (want_markets, want_total) = expected(&api, vendor, "MARKETING").await;
    let got = markets(body);
    assert_eq!(got, want_markets);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["Brazil", "Germany", "India", "Nigeria", "North America"]
    );
    assert_eq!(got["North America"].0, 3, "US and CA share a market");
    assert_eq!(dec(&body["total"]), want_total);
    assert!(want_total > Decimal::ZERO);
    // India's marketing price on the sample card: 0.0107 USD × 88 × 1.20 = 1.1299 INR.
    let india = body["markets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["market"] == "India")
        .unwrap();
    assert_eq!(
        dec(&india["unit_price"]),
        Decimal::from_str("1.1299").unwrap()
    );
    assert_eq!(
        dec(&india["subtotal"]),
        Decimal::from_str("3.3897").unwrap()
    );
    assert!(body["quoted_at"].is_string());
}

#[tokio::test]
async fn the_category_meta_assigned_is_the_one_priced() {
    let api = Api::start().await;
    load_sample(&api).await;
    let t = token(&api.onboard("ada@quote.example", "Alpha").await);
    let vendor = vendor_of(&api, "ada@quote.example").await;
    // The vendor chose MARKETING; Meta re-categorised it as UTILITY (still in review: a
    // quote does not need an approved template).
    let template = template(
        &api,
        &t,
        "order_update",
        "MARKETING",
        Some("UTILITY"),
        "PENDING",
    )
    .await;
    let list = list_of(&api, &t, vendor, "Everyone", "55", &MEMBERS).await;

    let quoted = quote(&api, &t, &template, &list).await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.body);
    assert_eq!(quoted.body["template"]["category_priced"], "UTILITY");
    assert_eq!(quoted.body["template"]["status"], "PENDING");
    let (utility_markets, utility_total) = expected(&api, vendor, "UTILITY").await;
    let (_, marketing_total) = expected(&api, vendor, "MARKETING").await;
    assert_eq!(markets(&quoted.body), utility_markets);
    assert_eq!(dec(&quoted.body["total"]), utility_total);
    assert_ne!(utility_total, marketing_total);
}

fn credit(amount: Decimal) -> Credit {
    Credit {
        kind: CreditKind::Recharge,
        amount,
        reference: format!("recharge:pay_{}", Uuid::new_v4().simple()),
        payment_order_id: None,
        description: Some("Razorpay recharge".to_owned()),
        created_by: None,
    }
}

#[tokio::test]
async fn the_wallet_covers_the_quote_or_says_how_much_is_missing() {
    let api = Api::start().await;
    load_sample(&api).await;
    let t = token(&api.onboard("ada@quote.example", "Alpha").await);
    let vendor = vendor_of(&api, "ada@quote.example").await;
    let template = template(&api, &t, "diwali_sale", "MARKETING", None, "APPROVED").await;
    let list = list_of(&api, &t, vendor, "Everyone", "55", &MEMBERS).await;

    let empty = quote(&api, &t, &template, &list).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    let total = dec(&empty.body["total"]);
    assert_eq!(empty.body["covered"], false);
    assert_eq!(dec(&empty.body["shortfall"]), total);
    assert_eq!(dec(&empty.body["wallet"]["available"]), Decimal::ZERO);

    // Half the total: short by the other half.
    let ledger = Ledger::new(api.stores.pg.clone());
    let half = (total / Decimal::TWO).round_dp(2);
    ledger.post_credit(vendor, credit(half)).await.unwrap();
    let short = quote(&api, &t, &template, &list).await;
    assert_eq!(short.body["covered"], false);
    assert_eq!(dec(&short.body["shortfall"]), total - half);
    assert_eq!(dec(&short.body["wallet"]["balance"]), half);
    assert_eq!(dec(&short.body["wallet"]["held"]), Decimal::ZERO);
    assert_eq!(dec(&short.body["wallet"]["available"]), half);

    ledger
        .post_credit(vendor, credit(Decimal::ONE_THOUSAND))
        .await
        .unwrap();
    let covered = quote(&api, &t, &template, &list).await;
    assert_eq!(covered.body["covered"], true);
    assert_eq!(dec(&covered.body["shortfall"]), Decimal::ZERO);
    assert_eq!(
        dec(&covered.body["wallet"]["available"]),
        half + Decimal::ONE_THOUSAND
    );
    assert_eq!(dec(&covered.body["total"]), total);
}

#[tokio::test]
async fn another_vendors_template_or_list_is_not_found_and_bad_requests_are_refused() {
    let api = Api::start().await;
    load_sample(&api).await;
    let alice = token(&api.onboard("alice@quote.example", "Alpha").await);
    let bob = token(&api.onboard("bob@quote.example", "Beta").await);
    let alice_vendor = vendor_of(&api, "alice@quote.example").await;
    let bob_vendor = vendor_of(&api, "bob@quote.example").await;
    let alice_template = template(&api, &alice, "sale", "MARKETING", None, "APPROVED").await;
    let bob_template = template(&api, &bob, "sale", "MARKETING", None, "APPROVED").await;
    let alice_list = list_of(&api, &alice, alice_vendor, "Mine", "55", &MEMBERS[..3]).await;
    let bob_list = list_of(&api, &bob, bob_vendor, "Theirs", "55", &MEMBERS[3..6]).await;

    // Any role of the vendor may quote.
    let (staff, _) = api.add_member(&alice, "sam@quote.example", "STAFF").await;
    let own = quote(&api, &token(&staff), &alice_template, &alice_list).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["recipients"]["billable"], 3);

    let their_template = quote(&api, &alice, &bob_template, &alice_list).await;
    assert_problem(&their_template, StatusCode::NOT_FOUND, "template_not_found");
    let their_list = quote(&api, &alice, &alice_template, &bob_list).await;
    assert_problem(&their_list, StatusCode::NOT_FOUND, "list_not_found");
    let unknown_template = quote(&api, &alice, MISSING, &alice_list).await;
    assert_problem(
        &unknown_template,
        StatusCode::NOT_FOUND,
        "template_not_found",
    );
    let unknown_list = quote(&api, &alice, &alice_template, MISSING).await;
    assert_problem(&unknown_list, StatusCode::NOT_FOUND, "list_not_found");
    // Identical answers: a 404 never tells whether the object exists elsewhere.
    assert_eq!(their_list.body["detail"], unknown_list.body["detail"]);

    for bad in [
        json!({ "template_id": alice_template }),
        json!({ "template_id": "not-a-uuid", "list_id": alice_list }),
    ] {
        let refused = api.post("/v1/campaigns/quote", Some(&alice), bad).await;
        assert_problem(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    // A field the route does not know is refused, named.
    let unknown_field = api
        .post(
            "/v1/campaigns/quote",
            Some(&alice),
            json!({ "template_id": alice_template, "list_id": alice_list, "budget": 5 }),
        )
        .await;
    assert_problem(
        &unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        unknown_field.body["errors"][0]["field"], "budget",
        "{}",
        unknown_field.body
    );

    let anonymous = api
        .call(
            Method::POST,
            "/v1/campaigns/quote",
            None,
            Some(json!({ "template_id": alice_template, "list_id": alice_list })),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_a_rate_card_in_force_the_quote_is_a_clear_conflict() {
    let api = Api::start().await;
    // No card loaded.
    let t = token(&api.onboard("ada@quote.example", "Alpha").await);
    let vendor = vendor_of(&api, "ada@quote.example").await;
    let template = template(&api, &t, "sale", "MARKETING", None, "APPROVED").await;
    let list = list_of(&api, &t, vendor, "Everyone", "55", &MEMBERS[..2]).await;
    let refused = quote(&api, &t, &template, &list).await;
    assert_problem(&refused, StatusCode::CONFLICT, "no_rate_card");
}
