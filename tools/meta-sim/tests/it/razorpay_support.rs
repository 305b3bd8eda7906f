//! The simulator with its Razorpay sandbox, posting to an in-test payment webhook receiver.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use meta_sim::{RazorpaySimSettings, SimSettings};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{quiet_behaviour, APP_SECRET, PHONE_NUMBER_ID, TOKEN, WABA_ID};

pub const KEY_ID: &str = "rzp_test_it";
pub const KEY_SECRET: &str = "it-razorpay-key-secret";
pub const WEBHOOK_SECRET: &str = "it-razorpay-webhook-secret";
const WAIT: Duration = Duration::from_secs(10);

/// Lowercase hex HMAC-SHA256, computed independently of the simulator.
pub fn hmac_hex(secret: &str, data: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// One payment webhook POST as the receiver got it.
#[derive(Clone, Debug)]
pub struct Posted {
    pub body: Bytes,
    pub json: Value,
    pub signature: Option<String>,
    pub event_id: Option<String>,
    pub content_type: Option<String>,
}

impl Posted {
    pub fn event(&self) -> &str {
        self.json["event"].as_str().unwrap_or_default()
    }

    pub fn payment(&self) -> &Value {
        &self.json["payload"]["payment"]["entity"]
    }

    /// The signature header is the webhook secret's HMAC of the exact bytes posted.
    pub fn assert_signed(&self) {
        assert_eq!(
            self.signature.as_deref(),
            Some(hmac_hex(WEBHOOK_SECRET, &self.body).as_str()),
            "X-Razorpay-Signature of {}",
            self.json
        );
    }
}

/// Stands in for the webhook-worker's `/webhook/payment`: records every POST, answers 500 to
/// the first `fail_first` and 200 afterwards.
#[derive(Clone, Default)]
pub struct PaymentReceiver {
    posted: Arc<Mutex<Vec<Posted>>>,
    fail_first: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl PaymentReceiver {
    async fn start(self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/webhook/payment", post(receive))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    pub fn fail_first(&self, n: usize) {
        self.fail_first.store(n, Ordering::SeqCst);
    }

    pub fn all(&self) -> Vec<Posted> {
        self.posted.lock().unwrap().clone()
    }

    /// Waits until at least `n` POSTs arrived (woken by each POST, not by sleeping).
    pub async fn wait_for(&self, n: usize) -> Vec<Posted> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {n} payment webhooks; got {:#?}",
                    all.iter().map(|p| &p.json).collect::<Vec<_>>()
                );
            }
        }
    }
}

async fn receive(
    State(receiver): State<PaymentReceiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    receiver.posted.lock().unwrap().push(Posted {
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body,
        signature: header("x-razorpay-signature"),
        event_id: header("x-razorpay-event-id"),
        content_type: header("content-type"),
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

pub struct RazorpaySim {
    pub base: String,
    pub http: reqwest::Client,
    pub receiver: PaymentReceiver,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), meta_sim::SimError>>>,
}

impl RazorpaySim {
    pub async fn start() -> Self {
        let receiver = PaymentReceiver::default();
        let receiver_addr = receiver.clone().start().await;
        let settings = SimSettings {
            access_token: TOKEN.to_owned(),
            app_secret: APP_SECRET.to_owned(),
            waba_id: WABA_ID.to_owned(),
            phone_number_id: PHONE_NUMBER_ID.to_owned(),
            display_phone_number: "15550001234".to_owned(),
            webhook_url: None,
            behaviour: quiet_behaviour(),
        };
        let razorpay = RazorpaySimSettings {
            key_id: KEY_ID.to_owned(),
            key_secret: KEY_SECRET.to_owned(),
            webhook_secret: WEBHOOK_SECRET.to_owned(),
            webhook_url: Some(format!("http://{receiver_addr}/webhook/payment")),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(meta_sim::serve_with_razorpay(
            settings,
            razorpay,
            listener,
            shutdown.clone(),
        ));
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

    /// `POST /v1/orders` with the given Basic auth (`None`: no header).
    pub async fn create_order_as(&self, auth: Option<(&str, &str)>, body: Value) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/orders", self.base))
            .json(&body);
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        read(request).await
    }

    pub async fn create_order(&self, body: Value) -> (u16, Value) {
        self.create_order_as(Some((KEY_ID, KEY_SECRET)), body).await
    }

    /// A ₹299 order with a tenant note; its id.
    pub async fn order_id(&self) -> String {
        let (status, order) = self
            .create_order(
                json!({"amount": 29900, "currency": "INR", "receipt": "wallet#1",
                                 "notes": {"tenant_id": "t-42"}}),
            )
            .await;
        assert_eq!(status, 200, "{order}");
        order["id"].as_str().unwrap().to_owned()
    }

    pub async fn get_authed(&self, path: &str) -> (u16, Value) {
        read(
            self.http
                .get(format!("{}{path}", self.base))
                .basic_auth(KEY_ID, Some(KEY_SECRET)),
        )
        .await
    }

    pub async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        read(self.http.post(format!("{}{path}", self.base)).json(&body)).await
    }

    pub async fn deliveries(&self) -> Vec<Value> {
        let (status, body) = read(
            self.http
                .get(format!("{}/_sim/razorpay/webhooks", self.base)),
        )
        .await;
        assert_eq!(status, 200);
        body.as_array().unwrap().clone()
    }

    /// The delivery log once it holds `n` records: a POST's record lands just after the
    /// receiver answers it, so the receiver having it does not mean the log does yet.
    pub async fn deliveries_at_least(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let deliveries = self.deliveries().await;
            if deliveries.len() >= n || tokio::time::Instant::now() > deadline {
                return deliveries;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn read(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
