//! The simulator with its Razorpay sandbox, posting to an in-test payment webhook receiver.

use std::time::Duration;

use hmac::{Hmac, Mac};
use meta_sim::{RazorpaySimSettings, SimSettings};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    quiet_behaviour, Received, Receiver, APP_SECRET, PHONE_NUMBER_ID, TOKEN, WABA_ID,
};

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
pub type Posted = Received;

impl Received {
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

impl Receiver {
    /// Waits until at least `n` payment webhooks arrived.
    pub async fn wait_for_posts(&self, n: usize) -> Vec<Posted> {
        self.wait_for(&format!("{n} payment webhooks"), |all| all.len() >= n)
            .await
    }
}

pub struct RazorpaySim {
    pub base: String,
    pub http: reqwest::Client,
    pub receiver: Receiver,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), meta_sim::SimError>>>,
}

impl RazorpaySim {
    pub async fn start() -> Self {
        let receiver = Receiver::default();
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
