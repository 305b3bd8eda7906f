use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use meta_sim::{Behaviour, SimSettings};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-access-token";
pub const APP_SECRET: &str = "test-app-secret";
pub const WABA_ID: &str = "100000000000001";
pub const PHONE_NUMBER_ID: &str = "100000000000002";
const WAIT: Duration = Duration::from_secs(10);

/// One POST the receiver got (a Meta or a Razorpay webhook).
#[derive(Clone, Debug)]
pub struct Received {
    pub body: Bytes,
    /// `X-Hub-Signature-256` (Meta) or `X-Razorpay-Signature` (Razorpay).
    pub signature: Option<String>,
    /// `x-razorpay-event-id` (Razorpay only).
    pub event_id: Option<String>,
    pub content_type: Option<String>,
    pub json: Value,
}

impl Received {
    pub fn statuses(&self) -> Vec<Value> {
        self.changes()
            .filter_map(|c| c["value"]["statuses"].as_array().cloned())
            .flatten()
            .collect()
    }

    pub fn changes(&self) -> impl Iterator<Item = &Value> {
        self.json["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["changes"].as_array().into_iter().flatten())
    }

    pub fn field(&self) -> Option<&str> {
        self.changes().next().and_then(|c| c["field"].as_str())
    }
}

/// Stands in for the webhook-worker (`/webhook/meta` and `/webhook/payment`): records every POST, answers 500 to the first
/// `fail_first` of them and 200 afterwards.
#[derive(Clone, Default)]
pub struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl Receiver {
    pub(crate) async fn start(self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/webhook/meta", post(receive))
            .route("/webhook/payment", post(receive))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    pub fn fail_first(&self, n: usize) {
        self.fail_first.store(n, Ordering::SeqCst);
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received (woken by each POST, not by sleeping).
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let all = self.all();
            if done(&all) {
                return all;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; received: {:#?}",
                    self.all().iter().map(|r| &r.json).collect::<Vec<_>>()
                );
            }
        }
    }

    /// Every status received, across all POSTs.
    pub fn statuses(&self) -> Vec<Value> {
        self.all().iter().flat_map(Received::statuses).collect()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    receiver.received.lock().unwrap().push(Received {
        body,
        signature: header("x-hub-signature-256").or_else(|| header("x-razorpay-signature")),
        event_id: header("x-razorpay-event-id"),
        content_type: header("content-type"),
        json,
    });
    let failing = receiver
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    receiver.changed.notify_waiters();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// Quick statuses, nothing random unless a test asks for it.
pub fn quiet_behaviour() -> Behaviour {
    Behaviour {
        read_rate: 0.0,
        read_without_delivered_rate: 0.0,
        status_delay_ms: 5,
        batch_window_ms: 20,
        template_review_delay_ms: 20,
        webhook_retry_base_ms: 20,
        webhook_retry_max_ms: 200,
        ..Behaviour::default()
    }
}

pub struct Sim {
    pub base: String,
    pub http: reqwest::Client,
    pub receiver: Receiver,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), meta_sim::SimError>>>,
}

impl Sim {
    pub async fn start(behaviour: Behaviour) -> Self {
        let receiver = Receiver::default();
        let receiver_addr = receiver.clone().start().await;
        let settings = SimSettings {
            access_token: TOKEN.to_owned(),
            app_secret: APP_SECRET.to_owned(),
            waba_id: WABA_ID.to_owned(),
            phone_number_id: PHONE_NUMBER_ID.to_owned(),
            display_phone_number: "15550001234".to_owned(),
            webhook_url: Some(format!("http://{receiver_addr}/webhook/meta")),
            behaviour,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(meta_sim::serve(settings, listener, shutdown.clone()));
        Self {
            base,
            http: reqwest::Client::new(),
            receiver,
            shutdown,
            server: Some(server),
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// `POST /v21.0/{phone}/messages` with the right token; (HTTP status, body).
    pub async fn send(&self, body: Value) -> (u16, Value) {
        self.graph_post(
            &format!("/v21.0/{PHONE_NUMBER_ID}/messages"),
            Some(TOKEN),
            body,
        )
        .await
    }

    pub async fn graph_post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send()).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(self.http.get(format!("{}{path}", self.base)).send()).await
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        read(
            self.http
                .request(method, format!("{}{path}", self.base))
                .json(&body)
                .send(),
        )
        .await
    }

    pub async fn seed_template(&self, name: &str, category: &str, body_text: &str) -> String {
        let (status, body) = self
            .control(
                reqwest::Method::POST,
                "/_sim/templates",
                json!({"name": name, "language": "en_US", "category": category,
                       "components": [{"type": "BODY", "text": body_text}]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

async fn read(response: impl Future<Output = reqwest::Result<reqwest::Response>>) -> (u16, Value) {
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

pub fn template_send(to: &str, name: &str, params: &[&str]) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|p| json!({"type": "text", "text": p}))
        .collect();
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": parameters}]
        }
    })
}

pub fn assert_signed(received: &Received) {
    kloyst_meta::signature::verify(
        APP_SECRET.as_bytes(),
        received.signature.as_deref().map(str::as_bytes),
        &received.body,
    )
    .expect("webhook signature verifies");
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
