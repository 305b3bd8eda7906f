//! The books reconciliation against the real Postgres: a clean database has no difference;
//! tampering (a campaign's actual_cost, a message's cost, a ledger debit without its message,
//! an UNPRICED message) is reported with the ids; every run is stored.

use std::time::Duration;

use kloyst_billing::Debit;
use kloyst_core::VendorId;
use kloyst_delivery::{reconcile_books, reconcile_books_if_due, DifferenceKind, SettlementError};
use kloyst_testkit::TestStores;

use crate::accounting::*;
use sqlx::PgPool;
use uuid::Uuid;

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
