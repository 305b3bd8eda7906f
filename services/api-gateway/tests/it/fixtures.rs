//! What the money and campaign tests share: the sample rate card, decimals as the API writes
//! them, a vendor's id, the problem+json check, approved templates, lists, funds and holds.

use std::str::FromStr;

use kloyst_billing::{Credit, CreditKind, Ledger};
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
    // The API adds at most 1,000 members per call.
    for chunk in ids.chunks(1000) {
        let added = api
            .post(
                &format!("/v1/contact-lists/{list}/members"),
                Some(token),
                json!({ "contact_ids": chunk }),
            )
            .await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    }
    list
}

/// A template with one parameter created through the API, then given `status` directly, as
/// Meta's status webhook would.
pub async fn template(api: &Api, token: &str, name: &str, status: &str) -> String {
    let created = api
        .post(
            "/v1/templates",
            Some(token),
            json!({
                "name": name,
                "language": "en_US",
                "category": "MARKETING",
                "components": [
                    { "type": "BODY", "text": "Hi {{1}}, our sale starts today!",
                      "example": { "body_text": [["Asha"]] } }
                ]
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE templates SET status = $2 WHERE id = $1::uuid")
        .bind(&id)
        .bind(status)
        .execute(&api.stores.pg)
        .await
        .unwrap();
    id
}

pub fn credit(amount: Decimal) -> Credit {
    Credit {
        kind: CreditKind::Recharge,
        amount,
        reference: format!("recharge:pay_{}", Uuid::new_v4().simple()),
        payment_order_id: None,
        description: Some("Razorpay recharge".to_owned()),
        created_by: None,
    }
}

pub async fn fund(api: &Api, vendor: VendorId, amount: Decimal) {
    Ledger::new(api.stores.pg.clone())
        .post_credit(vendor, credit(amount))
        .await
        .unwrap();
}

pub async fn held(api: &Api, vendor: VendorId) -> Decimal {
    sqlx::query_scalar("SELECT held FROM wallets WHERE vendor_id = $1")
        .bind(vendor.as_uuid())
        .fetch_one(&api.stores.pg)
        .await
        .unwrap()
}

/// The services behind a launch: the Meta simulator, the outbox-relay and the worker-pool,
/// and with [`Pipeline::with_webhooks`] the webhook-worker the simulator posts its statuses
/// to, all on the test's stores. Stop with [`Pipeline::stop`].
pub struct Pipeline {
    pub sim_base: String,
    relay: kloyst_testkit::RunningService,
    worker: kloyst_testkit::RunningService,
    webhooks: Option<kloyst_testkit::RunningService>,
    shutdown: tokio_util::sync::CancellationToken,
    sim: tokio::task::JoinHandle<()>,
}

/// The simulator accepting any template name (the tests approve templates in SQL, never
/// through it).
pub fn sim_behaviour() -> meta_sim::Behaviour {
    meta_sim::Behaviour {
        accept_unknown_templates: true,
        ..meta_sim::Behaviour::default()
    }
}

impl Pipeline {
    /// Sends at `send_rate` per second; no status webhooks.
    pub async fn start(api: &Api, send_rate: u32) -> Self {
        Self::start_with(api, send_rate, sim_behaviour(), false, |env| env).await
    }

    /// Sends at `send_rate`, the simulator behaving as `behaviour` and posting its status
    /// webhooks to a webhook-worker; `adjust` tunes every service's configuration.
    pub async fn with_webhooks(
        api: &Api,
        send_rate: u32,
        behaviour: meta_sim::Behaviour,
        adjust: impl Fn(kloyst_config::Env) -> kloyst_config::Env,
    ) -> Self {
        Self::start_with(api, send_rate, behaviour, true, adjust).await
    }

    async fn start_with(
        api: &Api,
        send_rate: u32,
        behaviour: meta_sim::Behaviour,
        webhooks: bool,
        adjust: impl Fn(kloyst_config::Env) -> kloyst_config::Env,
    ) -> Self {
        use kloyst_testkit::RunningService;

        let env = adjust(api.stores.env());
        let webhooks = if webhooks {
            Some(RunningService::start::<webhook_worker::WebhookWorker>(&env).await)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let settings = meta_sim::SimSettings {
            access_token: "test-token".to_owned(),
            app_secret: "test-meta-app-secret".to_owned(),
            waba_id: "100000000000001".to_owned(),
            phone_number_id: "100000000000002".to_owned(),
            display_phone_number: "15550001234".to_owned(),
            webhook_url: webhooks.as_ref().map(|w| w.url("/webhook/meta")),
            behaviour,
        };
        let sim = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { meta_sim::serve(settings, listener, shutdown).await.unwrap() }
        });
        let env = env
            .with("META_API_BASE", sim_base.clone())
            .with("META_SEND_RATE", send_rate.to_string());
        let relay = RunningService::start::<outbox_relay::OutboxRelay>(&env).await;
        let worker = RunningService::start::<worker_pool::WorkerPool>(&env).await;
        Self {
            sim_base,
            relay,
            worker,
            webhooks,
            shutdown,
            sim,
        }
    }

    /// The simulator's record of accepted sends (newest `limit`).
    pub async fn sends(&self, limit: usize) -> Vec<Value> {
        self.sim_get(&format!("/_sim/messages?limit={limit}")).await
    }

    /// The simulator's counters: sends, planned outcomes, webhook deliveries.
    pub async fn stats(&self) -> Value {
        self.sim_get("/_sim/stats").await
    }

    async fn sim_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        reqwest::get(format!("{}{path}", self.sim_base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.worker.stop().await.unwrap();
        self.relay.stop().await.unwrap();
        if let Some(webhooks) = self.webhooks {
            webhooks.stop().await.unwrap();
        }
        self.shutdown.cancel();
        self.sim.await.unwrap();
    }
}
