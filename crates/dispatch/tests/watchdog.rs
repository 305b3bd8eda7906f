//! The watchdog against the real Postgres and Redis: a campaign that never moves is planned
//! again first (without that passing for progress), then FAILED with WATCHDOG_TIMEOUT, its
//! pending recipients cancelled and its hold released; paused campaigns, campaigns with a
//! recipient still SENDING and campaigns that move are left alone. Time is simulated by
//! setting the campaigns' timestamps with SQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use chrono::{DateTime, Utc};
use kloyst_config::sections::MetaApiSettings;
use kloyst_config::Env;
use kloyst_dispatch::{DispatchSettings, Dispatcher, SendRateLimiter};
use kloyst_meta::{MetaClient, MetaClientSettings};
use kloyst_queue::{Queue, QueueConfig};
use kloyst_testkit::TestStores;
use sqlx::PgPool;
use uuid::Uuid;

/// A dispatcher on the test's stores with the default watchdog (10m) and fail time (1h).
/// Meta is never called by the reconciler's watchdog.
fn dispatcher(stores: &TestStores) -> Dispatcher {
    let env: Env = stores
        .env()
        .with("META_API_BASE", "http://127.0.0.1:9")
        .with("META_ACCESS_TOKEN", "test-token")
        .with("META_WABA_ID", "100000000000001")
        .with("META_PHONE_NUMBER_ID", "100000000000002");
    let settings = DispatchSettings::from_env(&env).unwrap();
    assert_eq!(
        (settings.watchdog, settings.watchdog_fail_after),
        (Duration::from_secs(600), Duration::from_secs(3600))
    );
    let api = MetaApiSettings::from_env(&env).unwrap();
    let meta = MetaClient::new(MetaClientSettings::from_api(&api, Duration::from_secs(1))).unwrap();
    let jobs = Queue::new(
        stores.redis.clone(),
        QueueConfig::with_prefix(stores.redis_prefix.clone()),
        "jobs",
    );
    let limiter = SendRateLimiter::new(stores.redis.clone(), stores.redis_prefix.clone(), 0);
    Dispatcher::new(stores.pg.clone(), jobs, meta, limiter, settings)
}

/// A vendor with an APPROVED template and a wallet of 100 (nothing held yet).
async fn vendor(pg: &PgPool, n: u32) -> (Uuid, Uuid) {
    let vendor: Uuid = sqlx::query_scalar("INSERT INTO vendors (name) VALUES ($1) RETURNING id")
        .bind(format!("Vendor {n}"))
        .fetch_one(pg)
        .await
        .unwrap();
    sqlx::query("INSERT INTO wallets (vendor_id, currency, balance) VALUES ($1, 'INR', 100)")
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
    .bind(format!("v{n}_sale"))
    .fetch_one(pg)
    .await
    .unwrap();
    (vendor, template)
}

/// A campaign in `status` whose every timestamp (created, queued, started, last progress) is
/// `idle` ago, with one SENT recipient and `pending` PENDING ones, and a hold of 5.
async fn campaign(
    pg: &PgPool,
    (vendor, template): (Uuid, Uuid),
    status: &str,
    idle: &str,
    pending: i32,
) -> Uuid {
    let paused = status == "PAUSED";
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO campaigns (vendor_id, name, template_id, status, pause_reason, paused_at, \
             created_at, queued_at, started_at, last_progress_at, total_count, pending_count, \
             sent_count, quoted_cost) \
         VALUES ($1, 'Stalled', $2, $3, CASE WHEN $4 THEN 'MANUAL' END, \
             CASE WHEN $4 THEN now() - $5::interval END, now() - $5::interval, \
             now() - $5::interval, now() - $5::interval, now() - $5::interval, $6 + 1, $6, 1, 5) \
         RETURNING id",
    )
    .bind(vendor)
    .bind(template)
    .bind(status)
    .bind(paused)
    .bind(idle)
    .bind(pending)
    .fetch_one(pg)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO campaign_recipients (campaign_id, seq, vendor_id, mobile, country, status, \
             attempt_id, sending_at, sent_at, wa_message_id) \
         SELECT $1, s, $2, '9198' || lpad(s::text, 8, '0'), 'IN', \
                CASE WHEN s = 1 THEN 'SENT' ELSE 'PENDING' END, \
                CASE WHEN s = 1 THEN gen_random_uuid() END, CASE WHEN s = 1 THEN now() END, \
                CASE WHEN s = 1 THEN now() END, CASE WHEN s = 1 THEN 'wamid.' || $1 END \
           FROM generate_series(1, $3 + 1) AS s",
    )
    .bind(id)
    .bind(vendor)
    .bind(pending)
    .execute(pg)
    .await
    .unwrap();
    sqlx::query(
        "WITH h AS ( \
             INSERT INTO wallet_holds (wallet_id, vendor_id, campaign_id, reference, amount) \
             SELECT id, vendor_id, $2, 'hold:campaign:' || $2, 5 FROM wallets WHERE vendor_id = $1) \
         UPDATE wallets SET held = held + 5 WHERE vendor_id = $1",
    )
    .bind(vendor)
    .bind(id)
    .execute(pg)
    .await
    .unwrap();
    id
}

#[derive(Debug, sqlx::FromRow)]
struct State {
    status: String,
    failure_reason: Option<String>,
    finished_at: Option<DateTime<Utc>>,
    last_progress_at: Option<DateTime<Utc>>,
    replanned_at: Option<DateTime<Utc>>,
    pending_count: i32,
    hold_status: String,
    /// As text: this crate does not depend on a decimal type.
    hold_released: String,
}

async fn state(pg: &PgPool, id: Uuid) -> State {
    sqlx::query_as(
        "SELECT c.status, c.failure_reason, c.finished_at, c.last_progress_at, c.replanned_at, \
                c.pending_count, h.status AS hold_status, h.released::text AS hold_released \
           FROM campaigns c JOIN wallet_holds h ON h.campaign_id = c.id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_one(pg)
    .await
    .unwrap()
}

async fn recipient_statuses(pg: &PgPool, id: Uuid) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT status, count(*) FROM campaign_recipients WHERE campaign_id = $1 \
         GROUP BY status ORDER BY status",
    )
    .bind(id)
    .fetch_all(pg)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_campaign_that_never_moves_is_replanned_first_then_failed_and_its_hold_released() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let dispatcher = dispatcher(&stores);
    let v = vendor(pg, 1).await;
    // Two hours without progress: past both the watchdog and the fail time.
    let id = campaign(pg, v, "PROCESSING", "2 hours", 3).await;
    let before = state(pg, id).await;

    // Never re-planned in this stall: the re-plan gets its chance first.
    let first = dispatcher.reconcile().await.unwrap();
    assert_eq!(first.replanned, vec![id]);
    assert!(first.failed.is_empty(), "{first:?}");
    let replanned = state(pg, id).await;
    assert_eq!(replanned.status, "PROCESSING");
    assert!(replanned.replanned_at.is_some());
    assert_eq!(
        replanned.last_progress_at, before.last_progress_at,
        "a re-plan is not progress"
    );

    // The next passes (within the watchdog) neither re-plan it again nor fail it yet.
    let second = dispatcher.reconcile().await.unwrap();
    assert_eq!(
        (second.replanned.len(), second.failed.len()),
        (0, 0),
        "{second:?}"
    );

    // The re-plan had its CAMPAIGN_WATCHDOG and nothing moved: FAILED.
    sqlx::query("UPDATE campaigns SET replanned_at = now() - interval '11 minutes' WHERE id = $1")
        .bind(id)
        .execute(pg)
        .await
        .unwrap();
    let third = dispatcher.reconcile().await.unwrap();
    assert_eq!(third.failed, vec![id]);
    assert!(
        third.replanned.is_empty(),
        "a failed campaign is not re-planned"
    );
    let failed = state(pg, id).await;
    assert_eq!(failed.status, "FAILED");
    assert_eq!(failed.failure_reason.as_deref(), Some("WATCHDOG_TIMEOUT"));
    assert!(failed.finished_at.is_some());
    assert_eq!(failed.pending_count, 0);
    assert_eq!(
        (failed.hold_status.as_str(), failed.hold_released.as_str()),
        ("CLOSED", "5.0000")
    );
    assert_eq!(
        recipient_statuses(pg, id).await,
        vec![("CANCELLED".to_owned(), 3), ("SENT".to_owned(), 1)]
    );
    let held: String = sqlx::query_scalar("SELECT held::text FROM wallets WHERE vendor_id = $1")
        .bind(v.0)
        .fetch_one(pg)
        .await
        .unwrap();
    assert_eq!(held, "0.0000");
    let audit: (String, serde_json::Value) = sqlx::query_as(
        "SELECT actor_kind, details FROM audit_log WHERE action = 'campaign.failed' \
          AND target_id = $1::text",
    )
    .bind(id)
    .fetch_one(pg)
    .await
    .unwrap();
    assert_eq!(audit.0, "SYSTEM");
    assert_eq!(audit.1["reason"], "WATCHDOG_TIMEOUT");
    assert_eq!(audit.1["recipients_cancelled"], 3);

    // Once failed, later passes leave it be.
    let fourth = dispatcher.reconcile().await.unwrap();
    assert!(fourth.failed.is_empty() && fourth.replanned.is_empty());
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn paused_sending_and_moving_campaigns_are_not_failed() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let dispatcher = dispatcher(&stores);
    let v = vendor(pg, 2).await;
    let paused = campaign(pg, v, "PAUSED", "3 hours", 2).await;
    // A recipient SENDING now (its lease running): Meta may accept it; not failed under it.
    let sending = campaign(pg, v, "PROCESSING", "3 hours", 2).await;
    sqlx::query(
        "UPDATE campaign_recipients SET status = 'SENDING', attempt_id = gen_random_uuid(), \
             sending_at = now() WHERE campaign_id = $1 AND seq = 2",
    )
    .bind(sending)
    .execute(pg)
    .await
    .unwrap();
    // Stalled for 20 minutes only: re-planned, far from the fail time.
    let recent = campaign(pg, v, "QUEUED", "20 minutes", 2).await;
    // Moving: progress a minute ago.
    let moving = campaign(pg, v, "PROCESSING", "1 minute", 2).await;
    for id in [paused, sending, recent] {
        sqlx::query(
            "UPDATE campaigns SET replanned_at = now() - interval '11 minutes' WHERE id = $1",
        )
        .bind(id)
        .execute(pg)
        .await
        .unwrap();
    }

    let report = dispatcher.reconcile().await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    let mut replanned = report.replanned.clone();
    replanned.sort();
    let mut expected = vec![sending, recent];
    expected.sort();
    assert_eq!(replanned, expected, "the paused and the moving one are not");
    for (id, status) in [
        (paused, "PAUSED"),
        (sending, "PROCESSING"),
        (recent, "QUEUED"),
        (moving, "PROCESSING"),
    ] {
        let s = state(pg, id).await;
        assert_eq!(
            (s.status.as_str(), s.hold_status.as_str()),
            (status, "ACTIVE")
        );
        assert_eq!(s.failure_reason, None);
    }
    assert_eq!(
        recipient_statuses(pg, paused).await,
        vec![("PENDING".to_owned(), 2), ("SENT".to_owned(), 1)]
    );
    stores.cleanup_redis().await;
}

/// The reconciler's second chance: a recipient marked UNKNOWN (its worker died, and no status
/// came within the lease) whose callback data shows up in a later status webhook was accepted
/// by Meta after all: SENT with that wamid and its message log, counters moved; one with no
/// trace stays UNKNOWN and is never resent.
#[tokio::test]
async fn an_unknown_recipient_seen_in_a_later_status_is_sent_after_all() {
    let stores = TestStores::new().await;
    let dispatcher = dispatcher(&stores);
    let id = campaign(
        &stores.pg,
        vendor(&stores.pg, 5).await,
        "PROCESSING",
        "1 minute",
        0,
    )
    .await;
    sqlx::query("UPDATE campaigns SET unknown_count = 2, total_count = 3 WHERE id = $1")
        .bind(id)
        .execute(&stores.pg)
        .await
        .unwrap();
    let mut attempts = Vec::new();
    for seq in [2, 3] {
        let attempt = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO campaign_recipients (campaign_id, seq, vendor_id, mobile, country, status, \
                 attempt_id, sending_at, attempts) \
             SELECT $1, $2, vendor_id, '91980000000' || $2, 'IN', 'UNKNOWN', $3, \
                    now() - interval '5 minutes', 1 FROM campaigns WHERE id = $1",
        )
        .bind(id)
        .bind(seq)
        .bind(attempt)
        .execute(&stores.pg)
        .await
        .unwrap();
        attempts.push(attempt);
    }
    // Meta's `sent` for seq 2's attempt, stored by the webhook-worker after the lease ran out.
    let callback = kloyst_dispatch::callback_data(id, 2, attempts[0]);
    sqlx::query(
        "INSERT INTO message_status_events (inbox_id, waba_id, wa_message_id, status, status_at, payload) \
         VALUES (1, '100000000000001', 'wamid.late', 'SENT', now(), \
                 jsonb_build_object('id', 'wamid.late', 'status', 'sent', 'biz_opaque_callback_data', $1::text))",
    )
    .bind(&callback)
    .execute(&stores.pg)
    .await
    .unwrap();

    // Its `delivered` waited past the park timeout and was dead-lettered: due again once the
    // recipient is resolved.
    sqlx::query(
        "INSERT INTO message_status_events (inbox_id, waba_id, wa_message_id, status, status_at, \
             payload, dead_at, dead_reason) \
         VALUES (1, '100000000000001', 'wamid.late', 'DELIVERED', now(), \
                 jsonb_build_object('id', 'wamid.late', 'status', 'delivered', \
                                    'biz_opaque_callback_data', $1::text), \
                 now(), 'no message with this wamid')",
    )
    .bind(&callback)
    .execute(&stores.pg)
    .await
    .unwrap();

    let report = dispatcher.reconcile().await.unwrap();
    assert_eq!(report.resolved_unknown, 1, "{report:?}");
    let rows: Vec<(i32, String, Option<String>)> = sqlx::query_as(
        "SELECT seq, status, wa_message_id FROM campaign_recipients \
         WHERE campaign_id = $1 AND seq > 1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (2, "SENT".to_owned(), Some("wamid.late".to_owned())),
            (3, "UNKNOWN".to_owned(), None)
        ]
    );
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_logs WHERE campaign_id = $1 AND wa_message_id = 'wamid.late'",
    )
    .bind(id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!(logged, 1, "the log its statuses apply to");
    let (sent, unknown): (i32, i32) =
        sqlx::query_as("SELECT sent_count, unknown_count FROM campaigns WHERE id = $1")
            .bind(id)
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!((sent, unknown), (2, 1));
    let dead: i64 =
        sqlx::query_scalar("SELECT count(*) FROM message_status_events WHERE dead_at IS NOT NULL")
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!(dead, 0, "the dead-lettered delivered is due again");
    // Idempotent: nothing more to resolve.
    assert_eq!(dispatcher.reconcile().await.unwrap().resolved_unknown, 0);
}
