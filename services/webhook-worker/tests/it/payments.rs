//! `/webhook/payment`: Razorpay's signature over the raw body, one inbox row per event id,
//! and one credit per payment however the event is redelivered.

use kloyst_payments::signature::sign_webhook;
use kloyst_testkit::{RunningService, TestStores};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;
use webhook_worker::WebhookWorker;

use crate::support::*;

/// The testkit's RAZORPAY_WEBHOOK_SECRET.
const WEBHOOK_SECRET: &str = "test-razorpay-webhook-secret";

struct Order {
    vendor: Uuid,
    razorpay_order_id: String,
}

async fn new_order(pg: &PgPool, amount_paise: i64) -> Order {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Acme') RETURNING id")
            .fetch_one(pg)
            .await
            .unwrap();
    let razorpay_order_id = format!("order_{}", &Uuid::new_v4().simple().to_string()[..14]);
    sqlx::query(
        "WITH w AS (INSERT INTO wallets (vendor_id) VALUES ($1) RETURNING id)
         INSERT INTO payment_orders (vendor_id, wallet_id, razorpay_order_id, receipt, amount,
                                     amount_paise, status)
         SELECT $1, w.id, $2, 'kl_' || md5($2), $3::numeric / 100, $3, 'created' FROM w",
    )
    .bind(vendor)
    .bind(&razorpay_order_id)
    .bind(amount_paise)
    .execute(pg)
    .await
    .unwrap();
    Order {
        vendor,
        razorpay_order_id,
    }
}

fn captured(order: &Order, payment_id: &str, amount: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "entity": "event", "account_id": "acc_BFQ7uQEaa7j2z7", "event": "payment.captured",
        "contains": ["payment"],
        "payload": { "payment": { "entity": {
            "id": payment_id, "entity": "payment", "amount": amount, "currency": "INR",
            "status": "captured", "order_id": order.razorpay_order_id, "method": "upi",
            "captured": true, "notes": { "vendor_id": order.vendor.to_string() }
        } } },
        "created_at": 1_767_000_000
    }))
    .unwrap()
}

async fn post(
    client: &reqwest::Client,
    worker: &RunningService,
    body: &[u8],
    signature: Option<String>,
    event_id: &str,
) -> reqwest::Response {
    let mut request = client
        .post(worker.url("/webhook/payment"))
        .header("content-type", "application/json")
        .header("x-razorpay-event-id", event_id)
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-razorpay-signature", signature);
    }
    request.send().await.unwrap()
}

async fn credits(pg: &PgPool, vendor: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM transactions WHERE vendor_id = $1 AND kind = 'CREDIT_RECHARGE'",
    )
    .bind(vendor)
    .fetch_one(pg)
    .await
    .unwrap()
}

async fn balance(pg: &PgPool, vendor: Uuid) -> rust_decimal::Decimal {
    sqlx::query_scalar("SELECT balance FROM wallets WHERE vendor_id = $1")
        .bind(vendor)
        .fetch_one(pg)
        .await
        .unwrap()
}

/// Every processed (or failed) inbox row has settled.
async fn settled(pg: &PgPool) {
    let pending = wait_for_count(
        pg,
        "SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL AND dead_at IS NULL",
        0,
    )
    .await;
    assert_eq!(pending, 0, "the inbox drained");
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_nothing_is_stored_or_credited() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let client = reqwest::Client::new();
    let order = new_order(&stores.pg, 50_000).await;
    let body = captured(&order, "pay_BadSignature01", 50_000);
    let good = sign_webhook(WEBHOOK_SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    let amount_at = String::from_utf8_lossy(&tampered).find("50000").unwrap();
    tampered[amount_at] = b'9'; // 90000 paise, same signature
    for (payload, signature) in [
        (tampered, Some(good.clone())),
        (
            body.clone(),
            Some(sign_webhook(b"the-api-key-secret", &body)),
        ),
        (body.clone(), None),
        (body.clone(), Some("sha256=".to_owned() + &good)),
    ] {
        let response = post(&client, &worker, &payload, signature, "evt_Refused000001").await;
        assert_eq!(response.status(), 401);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "signature_invalid");
    }
    assert_eq!(inbox_count(&stores.pg).await, 0);
    assert_eq!(credits(&stores.pg, order.vendor).await, 0);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn one_event_delivered_1_2_5_and_8_concurrent_times_credits_once() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let client = reqwest::Client::new();
    for (round, deliveries) in [1usize, 2, 5].into_iter().enumerate() {
        let order = new_order(&stores.pg, 25_000).await;
        let body = captured(&order, &format!("pay_Sequential{round:04}"), 25_000);
        let signature = sign_webhook(WEBHOOK_SECRET.as_bytes(), &body);
        for _ in 0..deliveries {
            let response = post(
                &client,
                &worker,
                &body,
                Some(signature.clone()),
                &format!("evt_Sequential{round:04}"),
            )
            .await;
            assert_eq!(response.status(), 200);
        }
        settled(&stores.pg).await;
        assert_eq!(credits(&stores.pg, order.vendor).await, 1, "{deliveries}");
        assert_eq!(balance(&stores.pg, order.vendor).await, 250.into());
    }
    assert_eq!(inbox_count(&stores.pg).await, 3, "one row per event id");

    // 8 concurrent deliveries of one event, and the same payment under another event id
    // (Razorpay's `payment.captured` re-sent as a new event).
    let order = new_order(&stores.pg, 40_000).await;
    let body = captured(&order, "pay_Concurrent0001", 40_000);
    let signature = sign_webhook(WEBHOOK_SECRET.as_bytes(), &body);
    let posts: Vec<_> = (0..8)
        .map(|i| {
            let (client, url, body, signature) = (
                client.clone(),
                worker.url("/webhook/payment"),
                body.clone(),
                signature.clone(),
            );
            let event_id = if i == 7 {
                "evt_OtherEvent0001"
            } else {
                "evt_Concurrent0001"
            };
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("x-razorpay-signature", signature)
                    .header("x-razorpay-event-id", event_id)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for post in posts {
        assert_eq!(post.await.unwrap(), 200);
    }
    settled(&stores.pg).await;
    assert_eq!(inbox_count(&stores.pg).await, 5);
    assert_eq!(credits(&stores.pg, order.vendor).await, 1);
    assert_eq!(balance(&stores.pg, order.vendor).await, 400.into());
    let violations: i64 = sqlx::query_scalar("SELECT count(*) FROM wallet_invariant_violations()")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(violations, 0);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_payment_for_an_unknown_order_is_dead_lettered_with_its_reason() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let client = reqwest::Client::new();
    let mut order = new_order(&stores.pg, 10_000).await;
    order.razorpay_order_id = "order_NotOurs0000001".to_owned();
    let body = captured(&order, "pay_UnknownOrder01", 10_000);
    let signature = sign_webhook(WEBHOOK_SECRET.as_bytes(), &body);
    let response = post(
        &client,
        &worker,
        &body,
        Some(signature),
        "evt_UnknownOrder1",
    )
    .await;
    assert_eq!(
        response.status(),
        200,
        "acknowledged: it is signed and stored"
    );
    let dead = wait_for_count(
        &stores.pg,
        "SELECT count(*) FROM webhook_inbox WHERE dead_at IS NOT NULL AND last_error LIKE '%not ours%'",
        1,
    )
    .await;
    assert_eq!(dead, 1);
    assert_eq!(credits(&stores.pg, order.vendor).await, 0);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn during_a_secret_rotation_the_previous_secret_still_verifies() {
    let stores = TestStores::new().await;
    let env = fast_env(&stores)
        .with("RAZORPAY_WEBHOOK_SECRET", "the-new-webhook-secret")
        .with("RAZORPAY_WEBHOOK_SECRET_PREVIOUS", WEBHOOK_SECRET);
    let worker = RunningService::start::<WebhookWorker>(&env).await;
    let client = reqwest::Client::new();
    let order = new_order(&stores.pg, 10_000).await;
    let body = captured(&order, "pay_Rotation000001", 10_000);
    for (secret, event_id) in [
        (WEBHOOK_SECRET, "evt_OldSecret00001"),
        ("the-new-webhook-secret", "evt_NewSecret00001"),
    ] {
        let signature = sign_webhook(secret.as_bytes(), &body);
        let response = post(&client, &worker, &body, Some(signature), event_id).await;
        assert_eq!(response.status(), 200, "{event_id}");
    }
    let other = sign_webhook(b"neither-secret", &body);
    let refused = post(&client, &worker, &body, Some(other), "evt_Neither0000001").await;
    assert_eq!(refused.status(), 401);
    settled(&stores.pg).await;
    assert_eq!(credits(&stores.pg, order.vendor).await, 1);
    worker.stop().await.unwrap();
}
