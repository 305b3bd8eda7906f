//! Shared by the webhook-worker tests: signed Meta bodies and inbox queries.

use std::time::{Duration, Instant};

use kloyst_config::Env;
use kloyst_testkit::{RunningService, TestStores};
use meta_sim::{Behaviour, SimSettings};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
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

/// The testkit's META_ACCESS_TOKEN.
pub const ACCESS_TOKEN: &str = "test-token";

/// Meta's simulator, in-process, posting its webhooks to `worker`.
pub struct Sim {
    pub base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Sim {
    /// Speaks as the testkit's META_* identity (the access token of `stores.env()`) and posts
    /// its webhooks to `webhook_url`.
    pub async fn start(webhook_url: String, behaviour: Behaviour) -> Self {
        let settings = SimSettings {
            access_token: ACCESS_TOKEN.to_owned(),
            app_secret: APP_SECRET.to_owned(),
            waba_id: WABA_ID.to_owned(),
            phone_number_id: PHONE_NUMBER_ID.to_owned(),
            display_phone_number: "15550001234".to_owned(),
            webhook_url: Some(webhook_url),
            behaviour,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { meta_sim::serve(settings, listener, shutdown).await.unwrap() }
        });
        Self {
            base,
            http: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ACCESS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// A customer's text message to the business; its wamid.
    pub async fn inbound(&self, from: &str, text: &str) -> String {
        let response = self
            .http
            .post(format!("{}/_sim/inbound", self.base))
            .json(&json!({"from": from, "text": text, "name": "Asha Rao"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["wamid"].as_str().unwrap().to_owned()
    }

    /// `/_sim/webhooks`: every delivery record and the summary.
    pub async fn webhooks(&self) -> Value {
        self.get("/_sim/webhooks").await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}
