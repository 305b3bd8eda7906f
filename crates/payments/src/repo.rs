//! SQL of payment orders. Tenant calls run on the caller's RLS transaction; the webhook side
//! on the processor's owner connection.

use chrono::{DateTime, Utc};
use kloyst_core::VendorId;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// A payment order as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub vendor_id: Uuid,
    pub razorpay_order_id: Option<String>,
    pub receipt: String,
    pub amount: Decimal,
    pub amount_paise: i64,
    pub currency: String,
    pub status: String,
    pub razorpay_payment_id: Option<String>,
    pub amount_refunded_paise: i64,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, vendor_id, razorpay_order_id, receipt, amount, amount_paise, currency, \
                       status, razorpay_payment_id, amount_refunded_paise, created_at";

pub async fn wallet_of(
    conn: &mut PgConnection,
    vendor: VendorId,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, currency FROM wallets WHERE vendor_id = $1")
        .bind(vendor.as_uuid())
        .fetch_optional(conn)
        .await
}

/// The vendor's order for an Idempotency-Key, locked until the transaction ends.
pub async fn lock_by_idempotency_key(
    conn: &mut PgConnection,
    vendor: VendorId,
    key: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payment_orders
          WHERE vendor_id = $1 AND idempotency_key = $2 FOR UPDATE"
    ))
    .bind(vendor.as_uuid())
    .bind(key)
    .fetch_optional(conn)
    .await
}

pub struct NewOrderRow<'a> {
    pub id: Uuid,
    pub vendor: VendorId,
    pub wallet_id: Uuid,
    pub receipt: &'a str,
    pub amount: Decimal,
    pub amount_paise: i64,
    pub currency: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub created_by: Uuid,
    pub notes: &'a Value,
}

/// Inserts the order as `creating`. `None` when a concurrent request holding the same
/// Idempotency-Key committed first (the caller reads that one instead).
pub async fn insert_creating(
    conn: &mut PgConnection,
    row: &NewOrderRow<'_>,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO payment_orders (id, vendor_id, wallet_id, receipt, amount, amount_paise,
                                     currency, idempotency_key, created_by, notes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (vendor_id, idempotency_key) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(row.id)
    .bind(row.vendor.as_uuid())
    .bind(row.wallet_id)
    .bind(row.receipt)
    .bind(row.amount)
    .bind(row.amount_paise)
    .bind(row.currency)
    .bind(row.idempotency_key)
    .bind(row.created_by)
    .bind(row.notes)
    .fetch_optional(conn)
    .await
}

pub async fn mark_created(
    conn: &mut PgConnection,
    id: Uuid,
    razorpay_order_id: &str,
) -> Result<OrderRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE payment_orders SET razorpay_order_id = $2, status = 'created'
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(razorpay_order_id)
    .fetch_one(conn)
    .await
}

/// The vendor's order by Razorpay's id (tenant side: RLS and the vendor filter both apply).
pub async fn vendor_order_by_razorpay_id(
    conn: &mut PgConnection,
    vendor: VendorId,
    razorpay_order_id: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payment_orders
          WHERE vendor_id = $1 AND razorpay_order_id = $2 FOR UPDATE"
    ))
    .bind(vendor.as_uuid())
    .bind(razorpay_order_id)
    .fetch_optional(conn)
    .await
}

/// The checkout reported a payment: the order is under way (the webhook decides the rest).
pub async fn mark_attempted(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payment_orders SET status = 'attempted' WHERE id = $1 AND status = 'created'",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Any order by Razorpay's id, locked (webhook side, owner connection).
pub async fn lock_by_razorpay_order_id(
    conn: &mut PgConnection,
    razorpay_order_id: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payment_orders WHERE razorpay_order_id = $1 FOR UPDATE"
    ))
    .bind(razorpay_order_id)
    .fetch_optional(conn)
    .await
}

/// The order a payment was credited to, locked.
pub async fn lock_by_payment_id(
    conn: &mut PgConnection,
    payment_id: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payment_orders WHERE razorpay_payment_id = $1 FOR UPDATE"
    ))
    .bind(payment_id)
    .fetch_optional(conn)
    .await
}

/// Whether a payment was flagged as a mismatch (and so never credited).
pub async fn flagged_payment_exists(
    conn: &mut PgConnection,
    payment_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM payment_orders
                         WHERE status = 'mismatch' AND mismatch_detail ->> 'payment_id' = $1)",
    )
    .bind(payment_id)
    .fetch_one(conn)
    .await
}

pub async fn ledger_reference_exists(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM transactions WHERE reference = $1)")
        .bind(reference)
        .fetch_one(conn)
        .await
}

pub async fn mark_paid(
    conn: &mut PgConnection,
    id: Uuid,
    payment_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payment_orders
            SET status = 'paid', razorpay_payment_id = $2, paid_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(payment_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_mismatch(
    conn: &mut PgConnection,
    id: Uuid,
    detail: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payment_orders SET status = 'mismatch', mismatch_detail = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_failed(
    conn: &mut PgConnection,
    id: Uuid,
    code: Option<&str>,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payment_orders
            SET status = 'failed', failure_code = $2, failure_reason = $3, failed_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(code)
    .bind(reason.map(|r| r.chars().take(1000).collect::<String>()))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn add_refund(
    conn: &mut PgConnection,
    id: Uuid,
    refunded_paise: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payment_orders
            SET amount_refunded_paise = amount_refunded_paise + $2,
                status = CASE WHEN amount_refunded_paise + $2 >= amount_paise
                              THEN 'refunded' ELSE 'partially_refunded' END
          WHERE id = $1",
    )
    .bind(id)
    .bind(refunded_paise)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where a vendor's receipts go: its billing e-mail, else its first active ADMIN's.
pub async fn receipt_address(
    conn: &mut PgConnection,
    vendor_id: Uuid,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(v.billing_email, a.email), coalesce(v.company_name, v.name)
           FROM vendors v
           LEFT JOIN LATERAL (SELECT email FROM users
                               WHERE vendor_id = v.id AND role = 'ADMIN' AND status = 'ACTIVE'
                               ORDER BY created_at LIMIT 1) a ON true
          WHERE v.id = $1",
    )
    .bind(vendor_id)
    .fetch_optional(conn)
    .await
    .map(|row: Option<(Option<String>, String)>| {
        row.and_then(|(email, name)| email.map(|email| (email, name)))
    })
}
