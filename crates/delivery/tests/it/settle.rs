//! Campaign settlement against the real Postgres: the hold's remainder is released once,
//! actual_cost becomes the sum of the messages' costs, the ledger stays consistent; an
//! unfinished message holds settlement back until CAMPAIGN_SETTLE_AFTER; a cancelled
//! campaign is not released twice; a running campaign is never settled.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kloyst_delivery::{settle_campaigns, SettleReport};
use kloyst_testkit::TestStores;

use crate::accounting::*;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn settled_at(pg: &PgPool, campaign: Uuid) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT settled_at FROM campaigns WHERE id = $1")
        .bind(campaign)
        .fetch_one(pg)
        .await
        .unwrap()
}

/// (status, remaining, released) of a hold.
async fn hold(pg: &PgPool, hold: Uuid) -> (String, Decimal, Decimal) {
    sqlx::query_as("SELECT status, remaining, released FROM wallet_holds WHERE id = $1")
        .bind(hold)
        .fetch_one(pg)
        .await
        .unwrap()
}

async fn releases(pg: &PgPool, campaign: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM transactions t JOIN wallet_holds h ON h.id = t.hold_id \
         WHERE t.kind = 'HOLD_RELEASE' AND h.campaign_id = $1",
    )
    .bind(campaign)
    .fetch_one(pg)
    .await
    .unwrap()
}

/// The `campaign.settled` audit rows' details.
async fn audits(pg: &PgPool, campaign: Uuid) -> Vec<serde_json::Value> {
    sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'campaign.settled' AND target_id = $1",
    )
    .bind(campaign.to_string())
    .fetch_all(pg)
    .await
    .unwrap()
}

async fn assert_books_clean(pg: &PgPool) {
    let violations = kloyst_billing::invariant_violations(pg, None)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn all_final_settles_once_and_releases_the_remainder_once() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let v = vendor(pg).await;
    let (id, hold_id) = campaign(pg, v, "COMPLETED", "5 minutes", "10").await;
    let charged = log(pg, v.0, id, 1, "SENT").await;
    charge(pg, v.0, id, hold_id, &charged, "0.8600").await;
    let free = log(pg, v.0, id, 2, "DELIVERED").await;
    sqlx::query("UPDATE message_logs SET billable = false, cost = 0, charged_at = now() WHERE wa_message_id = $1")
        .bind(&free)
        .execute(pg)
        .await
        .unwrap();
    let unpriced = log(pg, v.0, id, 3, "DELIVERED").await;
    sqlx::query("UPDATE message_logs SET flags = ARRAY['UNPRICED'] WHERE wa_message_id = $1")
        .bind(&unpriced)
        .execute(pg)
        .await
        .unwrap();
    // Tamper with actual_cost: settlement writes the final sum, whatever was counted live.
    sqlx::query("UPDATE campaigns SET actual_cost = 5 WHERE id = $1")
        .bind(id)
        .execute(pg)
        .await
        .unwrap();

    let now = Utc::now();
    let report = settle_campaigns(pg, DAY, now).await.unwrap();
    assert_eq!(report.settled_all_final, 1, "{report:?}");
    assert_eq!(report.settled_timeout, 0);
    assert_eq!(report.released, d("9.14"));
    assert!(settled_at(pg, id).await.is_some());
    let actual: Decimal = sqlx::query_scalar("SELECT actual_cost FROM campaigns WHERE id = $1")
        .bind(id)
        .fetch_one(pg)
        .await
        .unwrap();
    assert_eq!(actual, d("0.86"));
    let (status, remaining, released) = hold(pg, hold_id).await;
    assert_eq!(
        (status.as_str(), remaining, released),
        ("CLOSED", d("0"), d("9.14"))
    );
    let wallet: (Decimal, Decimal) =
        sqlx::query_as("SELECT balance, held FROM wallets WHERE vendor_id = $1")
            .bind(v.0.as_uuid())
            .fetch_one(pg)
            .await
            .unwrap();
    assert_eq!(wallet, (d("99.14"), d("0")));
    let details = audits(pg, id).await;
    assert_eq!(details.len(), 1);
    assert_eq!(details[0]["how"], "all_final");
    assert_eq!(details[0]["released"], "9.1400");
    assert_eq!(details[0]["actual_cost"], "0.8600");
    assert_eq!(details[0]["messages_charged"], 1);

    // A second pass finds nothing to do.
    let again = settle_campaigns(pg, DAY, Utc::now()).await.unwrap();
    assert_eq!(again, SettleReport::default());
    assert_eq!(releases(pg, id).await, 1);
    assert_eq!(audits(pg, id).await.len(), 1);
    assert_books_clean(pg).await;
}

#[tokio::test]
async fn an_undelivered_message_blocks_settlement_until_the_timeout() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let v = vendor(pg).await;
    let (id, hold_id) = campaign(pg, v, "COMPLETED", "2 hours", "5").await;
    let charged = log(pg, v.0, id, 1, "SENT").await;
    charge(pg, v.0, id, hold_id, &charged, "1").await;
    log(pg, v.0, id, 2, "SENT").await; // never delivered
    let failed = log(pg, v.0, id, 3, "SENT").await;
    sqlx::query("UPDATE message_logs SET status = 'FAILED' WHERE wa_message_id = $1")
        .bind(&failed)
        .execute(pg)
        .await
        .unwrap();

    let report = settle_campaigns(pg, DAY, Utc::now()).await.unwrap();
    assert_eq!(report.settled(), 0, "{report:?}");
    assert!(settled_at(pg, id).await.is_none());
    assert_eq!(hold(pg, hold_id).await.0, "ACTIVE");

    // Settle after 1h: the last send was 2h ago.
    let report = settle_campaigns(pg, Duration::from_secs(3600), Utc::now())
        .await
        .unwrap();
    assert_eq!(report.settled_timeout, 1, "{report:?}");
    assert_eq!(report.released, d("4"));
    assert!(settled_at(pg, id).await.is_some());
    let details = audits(pg, id).await;
    assert_eq!(details[0]["how"], "settle_timeout");
    assert_eq!(details[0]["messages_not_final"], 1);
    assert_eq!(
        hold(pg, hold_id).await,
        ("CLOSED".to_owned(), d("0"), d("4"))
    );
    assert_books_clean(pg).await;
}

#[tokio::test]
async fn a_cancelled_campaign_released_at_cancel_settles_without_a_second_release() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let v = vendor(pg).await;
    let (id, hold_id) = campaign(pg, v, "CANCELLED", "1 minute", "3").await;
    let mut tx = pg.begin().await.unwrap();
    kloyst_billing::release_in(&mut tx, v.0, hold_id, &format!("release:campaign:{id}"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let failed = log(pg, v.0, id, 1, "SENT").await;
    sqlx::query("UPDATE message_logs SET status = 'FAILED' WHERE wa_message_id = $1")
        .bind(&failed)
        .execute(pg)
        .await
        .unwrap();

    let report = settle_campaigns(pg, DAY, Utc::now()).await.unwrap();
    assert_eq!(report.settled_all_final, 1, "{report:?}");
    assert_eq!(report.released, Decimal::ZERO);
    assert_eq!(releases(pg, id).await, 1);
    assert_eq!(audits(pg, id).await[0]["released"], "0");
    assert_books_clean(pg).await;
}

#[tokio::test]
async fn running_campaigns_and_campaigns_without_a_hold() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let v = vendor(pg).await;
    // PROCESSING, last sent long ago and every message final: never settled.
    let (running, running_hold) = campaign(pg, v, "PROCESSING", "3 days", "2").await;
    let wamid = log(pg, v.0, running, 1, "SENT").await;
    charge(pg, v.0, running, running_hold, &wamid, "0.5").await;
    // A finished campaign without a hold (it cost nothing): settled, nothing released.
    let free: Uuid = sqlx::query_scalar(
        "INSERT INTO campaigns (vendor_id, name, template_id, status, failure_reason, finished_at) \
         VALUES ($1, 'Free', $2, 'FAILED', 'WATCHDOG_TIMEOUT', now()) RETURNING id",
    )
    .bind(v.0.as_uuid())
    .bind(v.1)
    .fetch_one(pg)
    .await
    .unwrap();
    let report = settle_campaigns(pg, Duration::from_secs(1), Utc::now())
        .await
        .unwrap();
    assert!(settled_at(pg, running).await.is_none());
    assert_eq!(hold(pg, running_hold).await.0, "ACTIVE");
    assert_eq!(report.settled(), 1, "{report:?}");
    assert!(settled_at(pg, free).await.is_some());
    assert_books_clean(pg).await;
}
