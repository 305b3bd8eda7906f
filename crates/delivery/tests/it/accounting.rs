//! What the settlement and books tests share: a funded vendor, a campaign with its hold,
//! message logs, and a charge posted the way the status applier posts it.

use std::str::FromStr;

use kloyst_billing::{Credit, CreditKind, Debit, HoldRequest};
use kloyst_core::VendorId;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

pub fn d(value: &str) -> Decimal {
    Decimal::from_str(value).unwrap()
}

/// A vendor with a wallet funded with 100 and an APPROVED template.
pub async fn vendor(pg: &PgPool) -> (VendorId, Uuid) {
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
    let template: Uuid = sqlx::query_scalar(
        "INSERT INTO templates (vendor_id, name, language, category, components, param_count, \
             meta_name, status) \
         VALUES ($1, 'sale', 'en_US', 'MARKETING', '[{\"type\": \"BODY\", \"text\": \"Hi\"}]', 0, \
             $2, 'APPROVED') RETURNING id",
    )
    .bind(vendor)
    .bind(format!("v_{}", Uuid::new_v4().simple()))
    .fetch_one(pg)
    .await
    .unwrap();
    let vendor = VendorId::from_uuid(vendor);
    let mut conn = pg.acquire().await.unwrap();
    kloyst_billing::post_credit_in(
        &mut conn,
        vendor,
        Credit {
            kind: CreditKind::Recharge,
            amount: d("100"),
            reference: format!("recharge:pay_{}", Uuid::new_v4().simple()),
            payment_order_id: None,
            description: None,
            created_by: None,
        },
    )
    .await
    .unwrap();
    (vendor, template)
}

/// A campaign in `status` (finished ones finished and last sent `ago` ago) with a hold of
/// `quoted`.
pub async fn campaign(
    pg: &PgPool,
    (vendor, template): (VendorId, Uuid),
    status: &str,
    ago: &str,
    quoted: &str,
) -> (Uuid, Uuid) {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO campaigns (vendor_id, name, template_id, status, started_at, finished_at, \
             last_sent_at, quoted_cost, total_count) \
         VALUES ($1, 'Sale', $2, $3, now() - $4::interval, \
             CASE WHEN $3 IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN now() - $4::interval END, \
             now() - $4::interval, $5, 3) RETURNING id",
    )
    .bind(vendor.as_uuid())
    .bind(template)
    .bind(status)
    .bind(ago)
    .bind(d(quoted))
    .fetch_one(pg)
    .await
    .unwrap();
    let mut tx = pg.begin().await.unwrap();
    let hold = kloyst_billing::hold_in(
        &mut tx,
        vendor,
        HoldRequest {
            amount: d(quoted),
            reference: format!("hold:campaign:{id}"),
            campaign_id: Some(id),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (id, hold.id)
}

/// A message log of the campaign in `status`, returning its wamid.
pub async fn log(pg: &PgPool, vendor: VendorId, campaign: Uuid, seq: i32, status: &str) -> String {
    let wamid = format!("wamid.{}", Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO message_logs (vendor_id, campaign_id, recipient_seq, direction, recipient, \
             wa_message_id, status) \
         VALUES ($1, $2, $3, 'OUTBOUND', $4, $5, $6)",
    )
    .bind(vendor.as_uuid())
    .bind(campaign)
    .bind(seq)
    .bind(format!("9198765432{seq:02}"))
    .bind(&wamid)
    .bind(status)
    .execute(pg)
    .await
    .unwrap();
    wamid
}

/// Charges a delivered message as the applier does: the debit `debit:<wamid>` captured from
/// the hold, then the log's cost / charged_at / ledger row and the campaign's actual_cost.
pub async fn charge(
    pg: &PgPool,
    vendor: VendorId,
    campaign: Uuid,
    hold: Uuid,
    wamid: &str,
    cost: &str,
) {
    let mut tx = pg.begin().await.unwrap();
    let posted = kloyst_billing::post_debits_in(
        &mut tx,
        vendor,
        &[Debit {
            reference: format!("debit:{wamid}"),
            amount: d(cost),
            hold_id: Some(hold),
            campaign_id: Some(campaign),
            wa_message_id: Some(wamid.to_owned()),
            metadata: serde_json::json!({}),
        }],
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE message_logs SET status = 'DELIVERED', cost = $2, charged_at = now(), \
             ledger_transaction_id = $3, billable = true, pricing_category = 'MARKETING' \
         WHERE wa_message_id = $1",
    )
    .bind(wamid)
    .bind(d(cost))
    .bind(posted[0].transaction_id)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE campaigns SET actual_cost = actual_cost + $2 WHERE id = $1")
        .bind(campaign)
        .bind(d(cost))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
