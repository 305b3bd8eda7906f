//! Delivery statuses and charging end to end: a campaign launched over HTTP, sent by the
//! worker-pool to the simulator, whose status webhooks — every one posted twice, up to 1,000
//! statuses per POST, shuffled — the webhook-worker stores, applies and charges; the
//! worker-pool then settles the campaign. The books must come out exact.

use std::time::Duration;

use kloyst_testkit::eventually;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{token, Api};
use crate::fixtures::{
    dec, fund, list_of, load_sample, sim_behaviour, template, vendor_of, Member, Pipeline,
};

const RECIPIENTS: usize = 400;

/// The campaign as the books see it once settled.
#[derive(Debug, sqlx::FromRow)]
struct Settled {
    sent_count: i32,
    delivered_count: i32,
    read_count: i32,
    failed_count: i32,
    actual_cost: Decimal,
    held: Decimal,
    balance: Decimal,
}

#[tokio::test]
async fn a_flood_of_duplicated_shuffled_statuses_leaves_the_books_exact() {
    let api = Api::start().await;
    load_sample(&api).await;
    let token = token(&api.onboard("owner@acme.test", "Acme").await);
    let vendor = vendor_of(&api, "owner@acme.test").await;
    let template = template(&api, &token, "flood", "APPROVED").await;
    let members: Vec<Member> = vec![(Some("IN"), false); RECIPIENTS];
    let list = list_of(&api, &token, vendor, "Flood", "91", &members).await;
    let recharged = Decimal::from(5_000);
    fund(&api, vendor, recharged).await;

    let behaviour = meta_sim::Behaviour {
        rate_per_second: 0,
        duplicate_rate: 1.0,
        reorder: true,
        batch_max: 1000,
        batch_window_ms: 300,
        failed_rate: 0.1,
        read_rate: 0.5,
        read_without_delivered_rate: 0.2,
        status_delay_ms: 10,
        ..sim_behaviour()
    };
    let pipeline = Pipeline::with_webhooks(&api, 0, behaviour, |env| {
        env.with("CAMPAIGN_SETTLE_INTERVAL", "300ms")
            .with("STATUS_APPLY_POLL", "100ms")
    })
    .await;

    let launched = api
        .post(
            "/v1/campaigns/launch",
            Some(&token),
            json!({ "name": "Flood", "template_id": template, "list_id": list,
                    "parameters": { "1": { "literal": "there" } } }),
        )
        .await;
    assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
    let id = Uuid::parse_str(launched.body["id"].as_str().unwrap()).unwrap();
    let unit = dec(&launched.body["quote"]["markets"][0]["unit_price"]);
    assert_eq!(
        dec(&launched.body["quote"]["total"]),
        unit * Decimal::from(RECIPIENTS as u64)
    );

    let settled = eventually(Duration::from_secs(120), || async {
        sqlx::query_scalar::<_, bool>("SELECT settled_at IS NOT NULL FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_one(&api.stores.pg)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    let stats = pipeline.stats().await;
    assert!(settled.is_some(), "the campaign settles: {stats}");
    // Every webhook was acknowledged, and each was posted twice.
    assert_eq!(stats["webhooks"]["pending"], 0, "{stats}");
    let outcomes = &stats["outcomes"];
    let count = |key: &str| i32::try_from(outcomes[key].as_u64().unwrap()).unwrap();
    let billable = count("billable_delivered");
    assert!(billable > 0 && count("failed") > 0, "{stats}");

    let books: Settled = sqlx::query_as(
        "SELECT c.sent_count, c.delivered_count, c.read_count, c.failed_count, c.actual_cost,
                w.held, w.balance
           FROM campaigns c JOIN wallets w ON w.vendor_id = c.vendor_id
          WHERE c.id = $1",
    )
    .bind(id)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    let expected_cost = unit * Decimal::from(billable);
    assert_eq!(books.sent_count, RECIPIENTS as i32, "{books:?}");
    assert_eq!(
        (books.delivered_count, books.read_count, books.failed_count),
        (count("delivered"), count("read"), count("failed")),
        "the counters are the simulator's record: {books:?} vs {outcomes}"
    );
    assert_eq!(books.actual_cost, expected_cost, "{books:?}");
    assert_eq!(
        books.held,
        Decimal::ZERO,
        "the hold's remainder is released"
    );
    assert_eq!(books.balance, recharged - expected_cost, "{books:?}");

    // One ledger debit per billable message, each the unit price, referenced by its wamid.
    let (debits, debited, distinct): (i64, Option<Decimal>, i64) = sqlx::query_as(
        "SELECT count(*), sum(-amount), count(DISTINCT reference) FROM transactions
          WHERE vendor_id = $1 AND kind = 'DEBIT_MESSAGE'",
    )
    .bind(vendor.as_uuid())
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(
        (debits, distinct),
        (i64::from(billable), i64::from(billable))
    );
    assert_eq!(debited, Some(expected_cost));
    let violations = kloyst_billing::invariant_violations(&api.stores.pg, None)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    // Nothing parked or dead-lettered: every status found its message.
    let (unapplied, dead): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE applied_at IS NULL), count(*) FILTER (WHERE dead_at IS NOT NULL)
           FROM message_status_events",
    )
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!((unapplied, dead), (0, 0));

    let shown: Value = api.get(&format!("/v1/campaigns/{id}"), &token).await.body;
    assert_eq!(
        shown["counters"]["delivered"],
        count("delivered"),
        "{shown}"
    );
    pipeline.stop().await;
}
