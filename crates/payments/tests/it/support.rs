//! Vendors with wallets and orders, Razorpay-shaped events, and the books check.

use kloyst_billing::{invariant_violations, Ledger, WalletView};
use kloyst_core::VendorId;
use kloyst_payments::{apply_payment_event, ApplyError, PaymentEvent, PaymentOutcome};
use kloyst_testkit::TestStores;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub struct Order {
    pub vendor: VendorId,
    pub id: Uuid,
    pub razorpay_order_id: String,
    pub amount_paise: i64,
}

/// A vendor with an ADMIN (for receipts) and an empty INR wallet.
pub async fn new_vendor(pg: &PgPool, admin_email: &str) -> VendorId {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Acme') RETURNING id")
            .fetch_one(pg)
            .await
            .unwrap();
    sqlx::query("INSERT INTO wallets (vendor_id) VALUES ($1)")
        .bind(vendor)
        .execute(pg)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (vendor_id, email, name, role, status, email_verified_at, password_hash)
         VALUES ($1, $2, 'Asha', 'ADMIN', 'ACTIVE', now(), 'x')",
    )
    .bind(vendor)
    .bind(admin_email)
    .execute(pg)
    .await
    .unwrap();
    VendorId::from_uuid(vendor)
}

/// A created order of `vendor` for `amount_paise`, as `init` commits it.
pub async fn new_order(pg: &PgPool, vendor: VendorId, amount_paise: i64) -> Order {
    let id = Uuid::new_v4();
    let razorpay_order_id = format!("order_{}", &id.simple().to_string()[..14]);
    sqlx::query(
        "INSERT INTO payment_orders (id, vendor_id, wallet_id, razorpay_order_id, receipt, amount,
                                     amount_paise, status, notes)
         SELECT $1, $2, w.id, $3, $4, $5::numeric / 100, $5, 'created',
                jsonb_build_object('vendor_id', $2::text, 'payment_order_id', $1::text)
           FROM wallets w WHERE w.vendor_id = $2",
    )
    .bind(id)
    .bind(vendor.as_uuid())
    .bind(&razorpay_order_id)
    .bind(format!("kl_{}", id.simple()))
    .bind(amount_paise)
    .execute(pg)
    .await
    .unwrap();
    Order {
        vendor,
        id,
        razorpay_order_id,
        amount_paise,
    }
}

pub fn payment_id() -> String {
    format!("pay_{}", &Uuid::new_v4().simple().to_string()[..14])
}

/// A `payment.captured` / `payment.failed` event in Razorpay's shape.
pub fn payment_event(
    event: &str,
    order: &Order,
    payment_id: &str,
    amount: i64,
    notes: Value,
) -> Value {
    let failed = event == "payment.failed";
    json!({
        "entity": "event",
        "account_id": "acc_BFQ7uQEaa7j2z7",
        "event": event,
        "contains": ["payment"],
        "payload": { "payment": { "entity": {
            "id": payment_id, "entity": "payment", "amount": amount, "currency": "INR",
            "status": if failed { "failed" } else { "captured" },
            "order_id": order.razorpay_order_id, "method": "upi", "captured": !failed,
            "amount_refunded": 0, "refund_status": null, "notes": notes,
            "error_code": if failed { json!("BAD_REQUEST_ERROR") } else { Value::Null },
            "error_description": if failed { json!("Payment failed") } else { Value::Null },
            "created_at": 1_767_000_000
        } } },
        "created_at": 1_767_000_000
    })
}

pub fn captured(order: &Order, payment_id: &str) -> Value {
    payment_event(
        "payment.captured",
        order,
        payment_id,
        order.amount_paise,
        json!({ "vendor_id": order.vendor.to_string() }),
    )
}

pub fn refund_event(refund_id: &str, payment_id: &str, amount: i64) -> Value {
    json!({
        "entity": "event",
        "event": "refund.processed",
        "contains": ["refund", "payment"],
        "payload": { "refund": { "entity": {
            "id": refund_id, "entity": "refund", "amount": amount, "currency": "INR",
            "payment_id": payment_id, "status": "processed", "created_at": 1_767_000_100
        } } },
        "created_at": 1_767_000_100
    })
}

/// Applies `event` in its own transaction, as the inbox processor does.
pub async fn apply(pg: &PgPool, event: &Value) -> Result<PaymentOutcome, ApplyError> {
    let body = serde_json::to_vec(event).unwrap();
    let parsed = PaymentEvent::parse(&body).unwrap();
    let mut tx = pg.begin().await.unwrap();
    let outcome = apply_payment_event(&mut tx, &parsed, Some("evt_test")).await;
    if outcome.is_ok() {
        tx.commit().await.unwrap();
    }
    outcome
}

/// The wallet after asserting that no invariant is violated.
pub async fn books(pg: &PgPool, vendor: VendorId) -> WalletView {
    let wallet = Ledger::new(pg.clone()).wallet(vendor).await.unwrap();
    let violations = invariant_violations(pg, Some(wallet.id)).await.unwrap();
    assert!(violations.is_empty(), "invariants violated: {violations:?}");
    wallet
}

pub async fn order_status(pg: &PgPool, order: &Order) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, razorpay_payment_id FROM payment_orders WHERE id = $1")
        .bind(order.id)
        .fetch_one(pg)
        .await
        .unwrap()
}

/// Credit rows on the vendor's ledger.
pub async fn recharge_rows(pg: &PgPool, vendor: VendorId) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM transactions WHERE vendor_id = $1 AND kind = 'CREDIT_RECHARGE'",
    )
    .bind(vendor.as_uuid())
    .fetch_one(pg)
    .await
    .unwrap()
}

/// Receipt mails queued in the outbox for the vendor.
pub async fn receipts(pg: &PgPool, vendor: VendorId) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT payload FROM outbox_events
          WHERE vendor_id = $1 AND payload ->> 'category' = 'receipt' ORDER BY id",
    )
    .bind(vendor.as_uuid())
    .fetch_all(pg)
    .await
    .unwrap()
}

pub fn inr(paise: i64) -> Decimal {
    Decimal::new(paise, 2)
}

pub async fn stores() -> TestStores {
    TestStores::new().await
}
