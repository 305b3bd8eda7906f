//! Shared by the webhook-worker tests: signed Meta bodies and inbox queries.

use std::time::{Duration, Instant};

use kloyst_config::Env;
use kloyst_testkit::{RunningService, TestStores};
use serde_json::{json, Value};
use sqlx::PgPool;
use webhook_worker::WebhookWorker;

pub const APP_SECRET: &str = "test-meta-app-secret";
pub const WABA_ID: &str = "100000000000001";
pub const PHONE_NUMBER_ID: &str = "100000000000002";

/// A worker with fast retries, so dead-lettering takes milliseconds.
pub fn fast_env(stores: &TestStores) -> Env {
    stores
        .env()
        .with("WEBHOOK_RETRY_BASE", "20ms")
        .with("WEBHOOK_RETRY_MAX", "50ms")
        .with("WEBHOOK_MAX_ATTEMPTS", "3")
        .with("WEBHOOK_POLL_INTERVAL", "50ms")
        .with("OPS_TOKEN", "ops-token-for-tests-0123456789")
}

pub async fn start(stores: &TestStores) -> RunningService {
    RunningService::start::<WebhookWorker>(&fast_env(stores)).await
}

pub fn status(wamid: &str, status: &str, timestamp: i64) -> Value {
    json!({
        "id": wamid,
        "status": status,
        "timestamp": timestamp.to_string(),
        "recipient_id": "919812345678",
        "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    })
}

pub fn statuses_body(statuses: &[Value]) -> Vec<u8> {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001234", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": statuses
        }}]}]
    });
    serde_json::to_vec(&body).unwrap()
}

pub async fn post_signed(
    client: &reqwest::Client,
    worker: &RunningService,
    body: Vec<u8>,
) -> reqwest::Response {
    let signature = kloyst_meta::signature::sign(APP_SECRET.as_bytes(), &body);
    client
        .post(worker.url("/webhook/meta"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

pub async fn inbox_count(pg: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM webhook_inbox")
        .fetch_one(pg)
        .await
        .unwrap()
}

/// Waits until `query` (a single bigint) reaches `expected`.
pub async fn wait_for_count(pg: &PgPool, query: &str, expected: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count: i64 = sqlx::query_scalar(query).fetch_one(pg).await.unwrap();
        if count == expected || Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
