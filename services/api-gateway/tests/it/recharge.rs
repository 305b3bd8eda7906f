//! `POST /v1/wallet/recharge/{init,verify}` against the project's Razorpay sandbox
//! (tools/meta-sim), and the whole recharge: order → payment → signed webhook →
//! webhook-worker → one credit, a receipt, the vendor's balance.

use std::str::FromStr;
use std::time::Duration;

use kloyst_testkit::{eventually, RunningService, TestStores};
use meta_sim::{RazorpaySimSettings, SimSettings};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webhook_worker::WebhookWorker;

use crate::client::{token, Api};
use crate::fixtures::dec;

/// The testkit's RAZORPAY_* values: the sandbox and our services share them.
const KEY_ID: &str = "rzp_test_kloyst";
const KEY_SECRET: &str = "test-razorpay-key-secret";
const WEBHOOK_SECRET: &str = "test-razorpay-webhook-secret";

struct Sandbox {
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Sandbox {
    async fn start(payment_webhook_url: Option<String>) -> Self {
        let settings = SimSettings {
            access_token: "test-token".to_owned(),
            app_secret: "test-meta-app-secret".to_owned(),
            waba_id: "100000000000001".to_owned(),
            phone_number_id: "100000000000002".to_owned(),
            display_phone_number: "15550001234".to_owned(),
            webhook_url: None,
            behaviour: Default::default(),
        };
        let razorpay = RazorpaySimSettings {
            key_id: KEY_ID.to_owned(),
            key_secret: KEY_SECRET.to_owned(),
            webhook_secret: WEBHOOK_SECRET.to_owned(),
            webhook_url: payment_webhook_url,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                meta_sim::serve_with_razorpay(settings, razorpay, listener, shutdown)
                    .await
                    .unwrap()
            }
        });
        Self {
            base,
            http: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    /// `/_sim/razorpay/pay`: the customer pays (or fails to) at Checkout.
    async fn pay(&self, options: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/_sim/razorpay/pay", self.base))
            .json(&options)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn order(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/v1/orders/{id}", self.base))
            .basic_auth(KEY_ID, Some(KEY_SECRET))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

async fn gateway_with(stores: TestStores, sandbox: &Sandbox) -> Api {
    let base = sandbox.base.clone();
    Api::start_with(stores, move |env| env.with("RAZORPAY_API_BASE", base)).await
}

async fn init(
    api: &Api,
    token: &str,
    amount: Value,
    key: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = api
        .http
        .post(api.service.url("/v1/wallet/recharge/init"))
        .bearer_auth(token)
        .json(&json!({ "amount": amount }));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

async fn order_rows(api: &Api) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM payment_orders")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap()
}

#[tokio::test]
async fn init_creates_a_razorpay_order_with_what_checkout_needs() {
    let sandbox = Sandbox::start(None).await;
    let api = gateway_with(TestStores::new().await, &sandbox).await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);

    let (status, _, order) = init(&api, &admin, json!("1500.50"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(dec(&order["amount"]), Decimal::from_str("1500.50").unwrap());
    assert_eq!(order["amount_paise"], 150_050);
    assert_eq!(order["currency"], "INR");
    assert_eq!(order["key_id"], KEY_ID);
    assert_eq!(order["status"], "created");
    let razorpay_id = order["razorpay_order_id"].as_str().unwrap();
    assert!(razorpay_id.starts_with("order_"));
    assert!(order["receipt"].as_str().unwrap().len() <= 40);

    // Razorpay holds the same order, with our ids in its notes.
    let at_razorpay = sandbox.order(razorpay_id).await;
    assert_eq!(at_razorpay["amount"], 150_050);
    assert_eq!(at_razorpay["receipt"], order["receipt"]);
    assert_eq!(at_razorpay["notes"]["payment_order_id"], order["id"]);

    let listed = api.get("/v1/wallet/recharges", &admin).await;
    assert_eq!(listed.body["data"][0]["razorpay_order_id"], razorpay_id);
    assert_eq!(listed.body["data"][0]["status"], "created");
    sandbox.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_order_and_refuses_another_amount() {
    let sandbox = Sandbox::start(None).await;
    let api = gateway_with(TestStores::new().await, &sandbox).await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);

    let (first_status, _, first) = init(&api, &admin, json!(500), Some("recharge-7f3a")).await;
    assert_eq!(first_status, StatusCode::CREATED);
    let (again_status, headers, again) =
        init(&api, &admin, json!(500), Some("recharge-7f3a")).await;
    assert_eq!(again_status, StatusCode::OK);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["razorpay_order_id"], first["razorpay_order_id"]);

    let (other_status, _, problem) = init(&api, &admin, json!(900), Some("recharge-7f3a")).await;
    assert_eq!(other_status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "idempotency_key_reused");

    // Four concurrent retries of a new key: one order.
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, admin) = (
                api.http.clone(),
                api.service.url("/v1/wallet/recharge/init"),
                admin.clone(),
            );
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .bearer_auth(admin)
                    .header("idempotency-key", "recharge-race")
                    .json(&json!({ "amount": 250 }))
                    .send()
                    .await
                    .unwrap();
                let body: Value = response.json().await.unwrap();
                body["id"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for racer in racers {
        ids.push(racer.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(order_rows(&api).await, 2);
    sandbox.stop().await;
}

#[tokio::test]
async fn bad_amounts_staff_and_strangers_are_refused() {
    let sandbox = Sandbox::start(None).await;
    let api = gateway_with(TestStores::new().await, &sandbox).await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let (staff_tokens, _) = api.add_member(&admin, "staff@acme.test", "STAFF").await;
    let staff = token(&staff_tokens);

    for (amount, code) in [
        (json!(50), "out_of_range"),
        (json!("100.001"), "precision"),
        (json!(600_000), "out_of_range"),
    ] {
        let (status, _, problem) = init(&api, &admin, amount.clone(), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{amount}");
        assert_eq!(problem["errors"][0]["field"], "amount");
        assert_eq!(problem["errors"][0]["code"], code, "{amount}");
    }
    let (status, _, _) = init(&api, &admin, json!("lots"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, problem) = init(&api, &staff, json!(500), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["code"], "admin_only");
    let anonymous = api
        .post("/v1/wallet/recharge/init", None, json!({ "amount": 500 }))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(order_rows(&api).await, 0);
    sandbox.stop().await;
}

#[tokio::test]
async fn razorpay_down_is_a_503_to_retry_and_stores_nothing() {
    // The testkit's RAZORPAY_API_BASE points at a closed port.
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let (status, headers, problem) = init(&api, &admin, json!(500), Some("k1")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(problem["code"], "payment_provider_unavailable");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(order_rows(&api).await, 0);
}

#[tokio::test]
async fn verify_checks_the_checkout_signature_against_our_order_and_never_credits() {
    let sandbox = Sandbox::start(None).await;
    let api = gateway_with(TestStores::new().await, &sandbox).await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let other = token(&api.onboard("owner@globex.test", "Globex").await);
    let (_, _, order) = init(&api, &admin, json!(800), None).await;
    let paid = sandbox
        .pay(json!({ "order_id": order["razorpay_order_id"] }))
        .await;
    let checkout = paid["checkout"].clone();

    let verified = api
        .post("/v1/wallet/recharge/verify", Some(&admin), checkout.clone())
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.body["status"], "attempted");
    assert_eq!(verified.body["credited"], false);
    let balance = api.get("/v1/wallet/balance", &admin).await;
    assert_eq!(
        dec(&balance.body["balance"]),
        Decimal::ZERO,
        "verify never credits"
    );

    let mut forged = checkout.clone();
    forged["razorpay_signature"] = json!("0".repeat(64));
    let refused = api
        .post("/v1/wallet/recharge/verify", Some(&admin), forged)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["code"], "signature_invalid");

    // Another vendor presenting a valid checkout of this order learns nothing.
    let stranger = api
        .post("/v1/wallet/recharge/verify", Some(&other), checkout)
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    let others = api.get("/v1/wallet/recharges", &other).await;
    assert_eq!(others.body["data"], json!([]));

    let malformed = api
        .post(
            "/v1/wallet/recharge/verify",
            Some(&admin),
            json!({ "razorpay_order_id": "x", "razorpay_payment_id": "y", "razorpay_signature": "z" }),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
    sandbox.stop().await;
}

/// Polls the vendor's balance until it equals `expected`.
async fn balance_reaches(api: &Api, token: &str, expected: Decimal) -> Decimal {
    let reached = eventually(Duration::from_secs(15), || async {
        let balance = dec(&api.get("/v1/wallet/balance", token).await.body["balance"]);
        (balance == expected).then_some(balance)
    })
    .await;
    match reached {
        Some(balance) => balance,
        None => dec(&api.get("/v1/wallet/balance", token).await.body["balance"]),
    }
}

#[tokio::test]
async fn a_paid_order_is_credited_once_with_a_receipt_and_a_mismatch_never() {
    let stores = TestStores::new().await;
    let worker_env = stores
        .env()
        .with("WEBHOOK_POLL_INTERVAL", "50ms")
        .with("WEBHOOK_RETRY_BASE", "20ms")
        .with("WEBHOOK_RETRY_MAX", "100ms");
    let worker = RunningService::start::<WebhookWorker>(&worker_env).await;
    let sandbox = Sandbox::start(Some(worker.url("/webhook/payment"))).await;
    let api = gateway_with(stores, &sandbox).await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);

    // Failed first, then captured, each event delivered three times.
    let (_, _, order) = init(&api, &admin, json!(1200), None).await;
    let paid = sandbox
        .pay(json!({ "order_id": order["razorpay_order_id"], "failed_first": true, "deliveries": 3 }))
        .await;
    let balance = balance_reaches(&api, &admin, Decimal::from(1200)).await;
    assert_eq!(balance, Decimal::from(1200));

    // A payment for the wrong amount is flagged, not credited.
    let (_, _, short) = init(&api, &admin, json!(700), None).await;
    sandbox
        .pay(json!({ "order_id": short["razorpay_order_id"], "amount": 100 }))
        .await;
    let flagged = eventually(Duration::from_secs(15), || async {
        let list = api.get("/v1/wallet/recharges", &admin).await;
        let statuses: Vec<String> = list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .collect();
        (statuses == ["mismatch", "paid"]).then_some(statuses)
    })
    .await;
    assert!(
        flagged.is_some(),
        "the short payment is flagged, the first paid"
    );

    // A partial refund of the first payment.
    let refund = sandbox
        .http
        .post(format!("{}/_sim/razorpay/refund", sandbox.base))
        .json(&json!({ "payment_id": paid["payment_id"], "amount": 20_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 200);
    let balance = balance_reaches(&api, &admin, Decimal::from(1000)).await;
    assert_eq!(balance, Decimal::from(1000));

    let ledger = api.get("/v1/wallet/transactions", &admin).await;
    let kinds: Vec<&str> = ledger.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["REFUND", "CREDIT_RECHARGE"]);

    let verified = api
        .post(
            "/v1/wallet/recharge/verify",
            Some(&admin),
            paid["checkout"].clone(),
        )
        .await;
    assert_eq!(verified.body["credited"], true);

    let receipts: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE kind = 'mail.send' AND payload ->> 'category' = 'receipt'",
    )
    .fetch_all(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["to"], "owner@acme.test");
    let violations: i64 = sqlx::query_scalar("SELECT count(*) FROM wallet_invariant_violations()")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(violations, 0);
    sandbox.stop().await;
    worker.stop().await.unwrap();
}
