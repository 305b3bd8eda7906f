//! The books reconciliation against the real Postgres: a clean database has no difference;
//! tampering (a campaign's actual_cost, a message's cost, a ledger debit without its message,
//! an UNPRICED message) is reported with the ids; every run is stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::str::FromStr;
use std::time::Duration;

use kloyst_billing::{Credit, CreditKind, Debit, HoldRequest};
use kloyst_core::VendorId;
use kloyst_delivery::{reconcile_books, reconcile_books_if_due, DifferenceKind, SettlementError};
use kloyst_testkit::TestStores;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

fn d(value: &str) -> Decimal {
    Decimal::from_str(value).unwrap()
}

/// A vendor with a wallet funded with 100 and an APPROVED template.
async fn vendor(pg: &PgPool) -> (VendorId, Uuid) {
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
async fn campaign(
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
async fn log(pg: &PgPool, vendor: VendorId, campaign: Uuid, seq: i32, status: &str) -> String {
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
async fn charge(
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

/// A campaign with two charged messages, one FAILED (counted) and counters as the applier
/// keeps them: the books are clean.
async fn clean(pg: &PgPool) -> (VendorId, Uuid, Vec<String>) {
    let v = vendor(pg).await;
    let (id, hold_id) = campaign(pg, v, "PROCESSING", "1 minute", "10").await;
    let a = log(pg, v.0, id, 1, "SENT").await;
    let b = log(pg, v.0, id, 2, "SENT").await;
    let failed = log(pg, v.0, id, 3, "SENT").await;
    charge(pg, v.0, id, hold_id, &a, "0.86").await;
    charge(pg, v.0, id, hold_id, &b, "1.10").await;
    sqlx::query("UPDATE message_logs SET status = 'FAILED' WHERE wa_message_id = $1")
        .bind(&failed)
        .execute(pg)
        .await
        .unwrap();
    sqlx::query("UPDATE campaigns SET delivered_count = 2, failed_count = 1 WHERE id = $1")
        .bind(id)
        .execute(pg)
        .await
        .unwrap();
    (v.0, id, vec![a, b, failed])
}

#[tokio::test]
async fn a_clean_database_has_no_difference_and_the_run_is_stored() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    clean(pg).await;
    let report = reconcile_books(pg).await.unwrap();
    assert_eq!(report.difference_count, 0, "{:#?}", report.differences);
    assert!(report.differences.is_empty(), "{:#?}", report.differences);
    assert_eq!(report.wallets_checked, 1);
    assert_eq!(report.campaigns_checked, 1);
    assert_eq!(report.messages_checked, 2);
    let stored: (i64, i32, serde_json::Value) = sqlx::query_as(
        "SELECT wallets_checked, difference_count, differences FROM books_reconciliations WHERE id = $1",
    )
    .bind(report.id)
    .fetch_one(pg)
    .await
    .unwrap();
    assert_eq!(stored, (1, 0, serde_json::json!([])));

    // Just run: the periodic run is not due again within its interval.
    let again = reconcile_books_if_due(pg, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(again.is_none());
    let due = reconcile_books_if_due(pg, Duration::from_millis(1))
        .await
        .unwrap();
    assert!(due.is_some_and(|r| r.id > report.id));
}

#[tokio::test]
async fn tampering_is_reported_with_the_ids() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let (vendor, id, wamids) = clean(pg).await;
    // A campaign's actual_cost.
    sqlx::query("UPDATE campaigns SET actual_cost = 7 WHERE id = $1")
        .bind(id)
        .execute(pg)
        .await
        .unwrap();
    // A message's cost (its debit says 1.10).
    let tampered: i64 = sqlx::query_scalar(
        "UPDATE message_logs SET cost = 0.5 WHERE wa_message_id = $1 RETURNING id",
    )
    .bind(&wamids[1])
    .fetch_one(pg)
    .await
    .unwrap();
    // A ledger debit without its message.
    let mut tx = pg.begin().await.unwrap();
    let orphan = kloyst_billing::post_debits_in(
        &mut tx,
        vendor,
        &[Debit {
            reference: "debit:wamid.ghost".to_owned(),
            amount: d("2"),
            hold_id: None,
            campaign_id: None,
            wa_message_id: Some("wamid.ghost".to_owned()),
            metadata: serde_json::json!({}),
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // A message the applier could not price, and a counter off by one.
    let unpriced = log(pg, vendor, id, 4, "DELIVERED").await;
    sqlx::query("UPDATE message_logs SET flags = ARRAY['UNPRICED'] WHERE wa_message_id = $1")
        .bind(&unpriced)
        .execute(pg)
        .await
        .unwrap();

    let report = reconcile_books(pg).await.unwrap();
    let of = |kind| {
        report
            .differences
            .iter()
            .filter(|d| d.kind == kind)
            .collect::<Vec<_>>()
    };
    let cost = of(DifferenceKind::CampaignActualCost);
    assert_eq!(cost.len(), 1, "{:#?}", report.differences);
    assert_eq!(cost[0].campaign_id, Some(id));
    assert_eq!(
        (cost[0].expected, cost[0].actual),
        (Some(d("1.36")), Some(d("7")))
    );
    let differs = of(DifferenceKind::ChargeAmountDiffers);
    assert_eq!(differs.len(), 1, "{:#?}", report.differences);
    assert_eq!(differs[0].message_log_id, Some(tampered));
    assert_eq!(
        differs[0].wa_message_id.as_deref(),
        Some(wamids[1].as_str())
    );
    assert_eq!(
        (differs[0].expected, differs[0].actual),
        (Some(d("-0.5")), Some(d("-1.10")))
    );
    let ghost = of(DifferenceKind::DebitWithoutCharge);
    assert_eq!(ghost.len(), 1, "{:#?}", report.differences);
    assert_eq!(ghost[0].transaction_id, Some(orphan[0].transaction_id));
    assert_eq!(ghost[0].message_log_id, None);
    let flagged = of(DifferenceKind::MessageUnpriced);
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].wa_message_id.as_deref(), Some(unpriced.as_str()));
    // delivered_count 2, but 3 logs DELIVERED now: informational only.
    let counters = of(DifferenceKind::CampaignCounter);
    assert_eq!(counters.len(), 1, "{:#?}", report.differences);
    assert!(counters[0].informational);
    assert_eq!(report.difference_count, 4);
    // The wallet itself is consistent (the orphan debit moved it through the ledger).
    assert!(of(DifferenceKind::WalletInvariant).is_empty());

    let stored: (i32, serde_json::Value) = sqlx::query_as(
        "SELECT difference_count, differences FROM books_reconciliations WHERE id = $1",
    )
    .bind(report.id)
    .fetch_one(pg)
    .await
    .unwrap();
    assert_eq!(stored.0, 4);
    let kinds: Vec<&str> = stored
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"debit_without_charge"), "{kinds:?}");
    assert!(kinds.contains(&"campaign_actual_cost"), "{kinds:?}");
}

#[tokio::test]
async fn a_tampered_wallet_is_reported_and_one_run_at_a_time() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let (vendor, _, _) = clean(pg).await;
    sqlx::query("UPDATE wallets SET balance = balance + 1 WHERE vendor_id = $1")
        .bind(vendor.as_uuid())
        .execute(pg)
        .await
        .unwrap();
    // Another run holds the lock: this one refuses (the periodic one skips).
    let mut other = pg.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(0x6b6c_6f79_626f_6f6bi64)
        .execute(&mut *other)
        .await
        .unwrap();
    assert!(matches!(
        reconcile_books(pg).await,
        Err(SettlementError::AlreadyRunning)
    ));
    assert!(reconcile_books_if_due(pg, Duration::from_millis(1))
        .await
        .unwrap()
        .is_none());
    other.rollback().await.unwrap();

    let report = reconcile_books(pg).await.unwrap();
    let wallet: Vec<_> = report
        .differences
        .iter()
        .filter(|d| d.kind == DifferenceKind::WalletInvariant)
        .collect();
    assert!(!wallet.is_empty(), "{:#?}", report.differences);
    assert!(wallet.iter().all(|d| d.vendor_id == Some(vendor.as_uuid())));
    assert!(wallet
        .iter()
        .any(|d| d.detail == "balance = sum(ledger.amount)"));
    assert_eq!(report.difference_count, wallet.len());
}
