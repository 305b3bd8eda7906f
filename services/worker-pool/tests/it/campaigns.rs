//! Campaign dispatch end to end: a campaign written with SQL (as the launch leaves it), a
//! `campaign.dispatch` job on the jobs stream, the worker-pool in-process and Meta's simulator.
//! The simulator's record of sends is the witness: nobody twice, the rate never above the cap.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kloyst_campaigns::jobs::DispatchCampaign;
use kloyst_config::Env;
use kloyst_queue::{OutgoingMessage, Queue, QueueConfig};
use kloyst_testkit::{eventually, RunningService, TestStores};
use meta_sim::{Behaviour, SimSettings};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use worker_pool::{WorkerPool, JOBS_STREAM};

const PHONE_NUMBER_ID: &str = "100000000000002";

struct Sim {
    base: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct SimSend {
    to: String,
    at: chrono::DateTime<chrono::Utc>,
}

impl Sim {
    async fn start(behaviour: Behaviour) -> Self {
        let settings = SimSettings {
            access_token: "test-token".to_owned(),
            app_secret: "test-meta-app-secret".to_owned(),
            waba_id: "100000000000001".to_owned(),
            phone_number_id: PHONE_NUMBER_ID.to_owned(),
            display_phone_number: "15550001234".to_owned(),
            webhook_url: None,
            behaviour,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { meta_sim::serve(settings, listener, stop).await.unwrap() }
        });
        Self {
            base,
            stop,
            task,
            http: reqwest::Client::new(),
        }
    }

    /// Makes `meta_name` an APPROVED template with three body parameters.
    async fn approve(&self, meta_name: &str) {
        let response = self
            .http
            .post(format!("{}/_sim/templates", self.base))
            .json(&json!({
                "name": meta_name, "language": "en_US", "category": "MARKETING",
                "components": [{"type": "BODY", "text": "Hi {{1}}, {{2}} off with code {{3}}"}]
            }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }

    async fn sends(&self) -> Vec<SimSend> {
        self.http
            .get(format!("{}/_sim/messages?limit=1000000", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

fn behaviour(rate_per_second: u32) -> Behaviour {
    Behaviour {
        rate_per_second,
        read_rate: 0.0,
        ..Behaviour::default()
    }
}

/// A vendor, its APPROVED template and a QUEUED campaign of `n` recipients (contacts with a
/// name and a code; seq 1..=n).
struct Campaign {
    vendor_id: Uuid,
    id: Uuid,
    mobiles: Vec<String>,
}

fn mobile(vendor: u32, i: u32) -> String {
    format!("91{vendor}{i:08}")
}

async fn campaign(stores: &TestStores, sim: &Sim, vendor_no: u32, n: u32) -> Campaign {
    let vendor_id: Uuid = sqlx::query_scalar("INSERT INTO vendors (name) VALUES ($1) RETURNING id")
        .bind(format!("Vendor {vendor_no}"))
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    let meta_name = format!("v{vendor_no}_spring_sale");
    let template_id: Uuid = sqlx::query_scalar(
        "INSERT INTO templates (vendor_id, name, language, category, components, param_count, \
             meta_name, status) \
         VALUES ($1, 'spring_sale', 'en_US', 'MARKETING', \
             '[{\"type\": \"BODY\", \"text\": \"Hi {{1}}, {{2}} off with code {{3}}\"}]', 3, $2, 'APPROVED') \
         RETURNING id",
    )
    .bind(vendor_id)
    .bind(&meta_name)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    sim.approve(&meta_name).await;
    let parameters = json!({
        "1": {"attribute": "name", "fallback": "there"},
        "2": {"literal": "50%"},
        "3": {"attribute": "code"}
    });
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO campaigns (vendor_id, name, template_id, parameters, status, queued_at, \
             total_count, pending_count) \
         VALUES ($1, 'Spring sale', $2, $3, 'QUEUED', now(), $4, $4) RETURNING id",
    )
    .bind(vendor_id)
    .bind(template_id)
    .bind(&parameters)
    .bind(i32::try_from(n).unwrap())
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    let mobiles: Vec<String> = (1..=n).map(|i| mobile(vendor_no, i)).collect();
    sqlx::query(
        "WITH c AS ( \
             INSERT INTO contacts (vendor_id, mobile, country, attributes) \
             SELECT $1, m, 'IN', jsonb_build_object('name', 'Asha ' || i, 'code', 'SAVE' || i) \
             FROM unnest($2::text[]) WITH ORDINALITY AS u(m, i) \
             RETURNING id, mobile) \
         INSERT INTO campaign_recipients (campaign_id, seq, vendor_id, contact_id, mobile, country) \
         SELECT $3, u.i, $1, c.id, u.m, 'IN' \
         FROM unnest($2::text[]) WITH ORDINALITY AS u(m, i) JOIN c ON c.mobile = u.m",
    )
    .bind(vendor_id)
    .bind(&mobiles)
    .bind(id)
    .execute(&stores.pg)
    .await
    .unwrap();
    Campaign {
        vendor_id,
        id,
        mobiles,
    }
}

async fn dispatch(stores: &TestStores, campaign: &Campaign) {
    let queue = Queue::new(
        stores.redis.clone(),
        QueueConfig::with_prefix(stores.redis_prefix.clone()),
        JOBS_STREAM,
    );
    let job = DispatchCampaign {
        campaign_id: campaign.id,
        vendor_id: campaign.vendor_id,
    };
    queue
        .publish(&OutgoingMessage::from_job(&job).unwrap())
        .await
        .unwrap();
}

#[derive(Debug, sqlx::FromRow)]
struct Counters {
    status: String,
    pause_reason: Option<String>,
    pending_count: i32,
    sent_count: i32,
    failed_count: i32,
    unknown_count: i32,
    skipped_count: i32,
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn counters(stores: &TestStores, id: Uuid) -> Counters {
    sqlx::query_as(
        "SELECT status, pause_reason, pending_count, sent_count, failed_count, unknown_count, skipped_count, \
                started_at, finished_at FROM campaigns WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&stores.pg)
    .await
    .unwrap()
}

async fn wait_for_status(
    stores: &TestStores,
    id: Uuid,
    status: &str,
    within: Duration,
) -> Counters {
    let reached = eventually(within, || async {
        let c = counters(stores, id).await;
        (c.status == status).then_some(c)
    })
    .await;
    match reached {
        Some(c) => c,
        None => panic!("campaign never {status}: {:?}", counters(stores, id).await),
    }
}

async fn recipient_statuses(stores: &TestStores, id: Uuid) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT status, count(*) FROM campaign_recipients WHERE campaign_id = $1 \
         GROUP BY status ORDER BY status",
    )
    .bind(id)
    .fetch_all(&stores.pg)
    .await
    .unwrap()
}

fn assert_nobody_twice(sends: &[SimSend]) {
    let unique: HashSet<&str> = sends.iter().map(|s| s.to.as_str()).collect();
    assert_eq!(unique.len(), sends.len(), "a recipient was sent twice");
}

fn env(stores: &TestStores, sim: &Sim, send_rate: u32) -> Env {
    stores
        .env()
        .with("META_API_BASE", &sim.base)
        .with("META_SEND_RATE", send_rate.to_string())
}

#[tokio::test]
async fn every_recipient_is_sent_once_logged_and_the_campaign_completes() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 1, 600).await;
    // seq 7: no code and no fallback → PARAMS, never sent; seq 13: explicit values that do
    // not match the template → Meta's 132000, permanent; seq 21: contact deleted → its
    // snapshot mobile stays, the fallback-less `code` is missing → PARAMS.
    sqlx::query("UPDATE contacts SET attributes = attributes - 'code' WHERE mobile = $1")
        .bind(&c.mobiles[6])
        .execute(&stores.pg)
        .await
        .unwrap();
    sqlx::query("UPDATE campaign_recipients SET params = '[\"just one\"]' WHERE campaign_id = $1 AND seq = 13")
        .bind(c.id)
        .execute(&stores.pg)
        .await
        .unwrap();
    sqlx::query("UPDATE campaign_recipients SET contact_id = gen_random_uuid() WHERE campaign_id = $1 AND seq = 21")
        .bind(c.id)
        .execute(&stores.pg)
        .await
        .unwrap();
    // seq 30 said STOP after the launch froze the list: skipped, not sent.
    sqlx::query("UPDATE contacts SET opted_out = true, opted_out_at = now() WHERE mobile = $1")
        .bind(&c.mobiles[29])
        .execute(&stores.pg)
        .await
        .unwrap();
    let env = env(&stores, &sim, 0).with("CAMPAIGN_RANGE_SIZE", "200");
    let worker = RunningService::start::<WorkerPool>(&env).await;
    let started = Instant::now();
    dispatch(&stores, &c).await;

    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    assert_eq!(
        (
            done.sent_count,
            done.failed_count,
            done.skipped_count,
            done.pending_count
        ),
        (596, 3, 1, 0)
    );
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    let sends = sim.sends().await;
    assert_eq!(sends.len(), 596);
    assert_nobody_twice(&sends);
    for skipped in [
        &c.mobiles[6],
        &c.mobiles[12],
        &c.mobiles[20],
        &c.mobiles[29],
    ] {
        assert!(
            sends.iter().all(|s| &s.to != skipped),
            "{skipped} must not be sent"
        );
    }
    assert_eq!(
        recipient_statuses(&stores, c.id).await,
        vec![
            ("FAILED".to_owned(), 3),
            ("SENT".to_owned(), 596),
            ("SKIPPED".to_owned(), 1)
        ]
    );
    type Failure = (i32, Option<i32>, Option<String>, Option<bool>);
    let failures: Vec<Failure> = sqlx::query_as(
        "SELECT seq, error_code, error_message, retryable FROM campaign_recipients \
         WHERE campaign_id = $1 AND status = 'FAILED' ORDER BY seq",
    )
    .bind(c.id)
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    assert_eq!(failures[0].0, 7);
    assert!(failures[0].2.as_deref().unwrap().starts_with("PARAMS"));
    assert_eq!(
        (failures[1].0, failures[1].1, failures[1].3),
        (13, Some(132000), Some(false))
    );
    assert_eq!(failures[2].0, 21);
    assert!(failures[2].2.as_deref().unwrap().starts_with("PARAMS"));

    // One log per recipient: accepted ones PENDING (awaiting Meta's first status) with the
    // wamid the simulator issued, failed ones with the error.
    let logs: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT status, count(*), count(DISTINCT wa_message_id) FROM message_logs \
         WHERE campaign_id = $1 AND direction = 'OUTBOUND' AND phone_number_id = $2 \
           AND template_category = 'MARKETING' GROUP BY status ORDER BY status",
    )
    .bind(c.id)
    .bind(PHONE_NUMBER_ID)
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    assert_eq!(
        logs,
        vec![
            ("FAILED".to_owned(), 3, 0),
            ("PENDING".to_owned(), 596, 596)
        ]
    );
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_logs l JOIN campaign_recipients r \
           ON r.campaign_id = l.campaign_id AND r.seq = l.recipient_seq \
         WHERE l.campaign_id = $1 AND (l.recipient <> r.mobile \
           OR l.wa_message_id IS DISTINCT FROM r.wa_message_id OR l.meta_response IS NULL AND l.status = 'PENDING')",
    )
    .bind(c.id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    println!(
        "uncapped: 600 recipients in {elapsed:?} ({:.0} messages/s end to end)",
        600.0 / elapsed.as_secs_f64()
    );

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

/// Sends started in any one-second window of the simulator's record.
fn busiest_second(sends: &[SimSend]) -> usize {
    let mut at: Vec<_> = sends.iter().map(|s| s.at).collect();
    at.sort();
    let mut busiest = 0;
    let mut start = 0;
    for end in 0..at.len() {
        while at[end] - at[start] >= chrono::Duration::seconds(1) {
            start += 1;
        }
        busiest = busiest.max(end - start + 1);
    }
    busiest
}

#[tokio::test]
async fn two_workers_together_never_exceed_the_per_number_rate() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 2, 100).await;
    // Small ranges so both workers send at once.
    let env = env(&stores, &sim, 20).with("CAMPAIGN_RANGE_SIZE", "25");
    let first = RunningService::start::<WorkerPool>(&env).await;
    let second = RunningService::start::<WorkerPool>(&env).await;
    dispatch(&stores, &c).await;

    wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(30)).await;
    let sends = sim.sends().await;
    assert_eq!(sends.len(), 100);
    assert_nobody_twice(&sends);
    let busiest = busiest_second(&sends);
    assert!(
        busiest <= 20,
        "{busiest} sends in one second at a cap of 20"
    );
    let span =
        sends.iter().map(|s| s.at).max().unwrap() - sends.iter().map(|s| s.at).min().unwrap();
    let span = span.to_std().unwrap();
    // 99 gaps at 20/s (less the 2% headroom) ≈ 5.05 s. The upper bound only catches a stall:
    // the achieved rate is measured by the bench on a quiet machine, and 2 loaded cores
    // stretch this (seen 7+ s with a parallel build running).
    assert!(
        span >= Duration::from_millis(4800) && span <= Duration::from_secs(10),
        "100 sends at 20/s took {span:?}"
    );
    println!("capped at 20/s: busiest second {busiest}, 100 sends over {span:?}");

    first.stop().await.unwrap();
    second.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn throttled_by_meta_the_campaign_slows_down_and_still_completes() {
    let stores = TestStores::new().await;
    // Meta allows 15/s; we were told 60/s.
    let sim = Sim::start(behaviour(15)).await;
    let c = campaign(&stores, &sim, 3, 150).await;
    let worker = RunningService::start::<WorkerPool>(&env(&stores, &sim, 60)).await;
    dispatch(&stores, &c).await;

    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(60)).await;
    assert_eq!(
        (done.sent_count, done.failed_count, done.pending_count),
        (150, 0, 0)
    );
    let sends = sim.sends().await;
    assert_eq!(sends.len(), 150);
    assert_nobody_twice(&sends);
    let stats = sim.stats().await;
    let throttled = stats["sends_rejected_by_code"]["130429"]
        .as_u64()
        .unwrap_or(0);
    assert!(throttled > 0, "the simulator never throttled: {stats}");
    // The shared factor was cut (it lives in Redis, for every worker copy).
    let mut redis = stores.redis.get().await.unwrap();
    let factor: Option<String> = kloyst_queue::redis::cmd("HGET")
        .arg(format!(
            "{}:dispatch:factor:{PHONE_NUMBER_ID}",
            stores.redis_prefix
        ))
        .arg("f")
        .query_async(&mut redis)
        .await
        .unwrap();
    let factor: f64 = factor.expect("a slow-down factor").parse().unwrap();
    assert!(factor < 1.0, "{factor}");
    let attempts_given_back: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM campaign_recipients WHERE campaign_id = $1 AND attempts > 1",
    )
    .bind(c.id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!(attempts_given_back, 0, "throttles do not use up attempts");
    println!("130429 answers: {throttled}; factor after: {factor}");

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn pause_stops_sending_between_batches_and_resume_finishes_the_rest() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 4, 120).await;
    let worker = RunningService::start::<WorkerPool>(&env(&stores, &sim, 20)).await;
    dispatch(&stores, &c).await;

    eventually(Duration::from_secs(10), || async {
        (counters(&stores, c.id).await.sent_count >= 20).then_some(())
    })
    .await
    .expect("sending started");
    sqlx::query(
        "UPDATE campaigns SET status = 'PAUSED', pause_reason = 'MANUAL', paused_at = now() WHERE id = $1",
    )
    .bind(c.id)
    .execute(&stores.pg)
    .await
    .unwrap();
    // The batch in flight (≤ one second of sends) finishes; then nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at_pause = sim.sends().await.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sim.sends().await.len(), at_pause, "sent while paused");
    assert!(at_pause < 120);
    let paused = counters(&stores, c.id).await;
    assert_eq!(paused.status, "PAUSED");
    assert_eq!(paused.sent_count as usize, at_pause);
    let statuses = recipient_statuses(&stores, c.id).await;
    assert_eq!(
        statuses,
        vec![
            ("PENDING".to_owned(), 120 - at_pause as i64),
            ("SENT".to_owned(), at_pause as i64)
        ]
    );

    // Resume as the API does: QUEUED, then campaign.dispatch.
    sqlx::query("UPDATE campaigns SET status = 'QUEUED', pause_reason = NULL, paused_at = NULL WHERE id = $1")
        .bind(c.id)
        .execute(&stores.pg)
        .await
        .unwrap();
    dispatch(&stores, &c).await;
    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(30)).await;
    assert_eq!((done.sent_count, done.pending_count), (120, 0));
    let sends = sim.sends().await;
    assert_eq!(sends.len(), 120);
    assert_nobody_twice(&sends);

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn cancel_stops_sending_and_leaves_the_rest_cancelled() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 5, 120).await;
    let worker = RunningService::start::<WorkerPool>(&env(&stores, &sim, 20)).await;
    dispatch(&stores, &c).await;
    eventually(Duration::from_secs(10), || async {
        (counters(&stores, c.id).await.sent_count >= 10).then_some(())
    })
    .await
    .expect("sending started");
    // As the API's cancel does.
    let mut tx = stores.pg.begin().await.unwrap();
    sqlx::query("UPDATE campaigns SET status = 'CANCELLED', finished_at = now() WHERE id = $1")
        .bind(c.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let cancelled = sqlx::query(
        "UPDATE campaign_recipients SET status = 'CANCELLED' WHERE campaign_id = $1 AND status = 'PENDING'",
    )
    .bind(c.id)
    .execute(&mut *tx)
    .await
    .unwrap()
    .rows_affected();
    sqlx::query(
        "UPDATE campaigns SET pending_count = greatest(pending_count - $2, 0) WHERE id = $1",
    )
    .bind(c.id)
    .bind(i32::try_from(cancelled).unwrap())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let cancelled_at = Instant::now();
    // Within a second: a batch still sending re-reads the status between slots.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = sim.sends().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sim.sends().await.len(), after.len(), "sent after cancel");
    assert!(after.len() < 120);
    assert_nobody_twice(&after);
    let statuses = recipient_statuses(&stores, c.id).await;
    assert!(
        statuses
            .iter()
            .all(|(s, _)| s == "SENT" || s == "CANCELLED"),
        "{statuses:?}"
    );
    let after_cancel = counters(&stores, c.id).await;
    assert_eq!(after_cancel.status, "CANCELLED");
    assert_eq!(after_cancel.sent_count as usize, after.len());
    assert_eq!(after_cancel.pending_count, 0, "{after_cancel:?}");
    println!(
        "cancel: {} sent, quiet within {:?}",
        after.len(),
        cancelled_at.elapsed()
    );

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn recipients_a_dead_worker_left_sending_are_reconciled_never_resent() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 6, 10).await;
    // A worker claimed seq 1..=4 ten minutes ago and died: seq 1 did reach Meta (a status
    // webhook carries its callback data), 2..=4 left no trace.
    let attempt = Uuid::new_v4();
    sqlx::query(
        "UPDATE campaigns SET status = 'PROCESSING', started_at = now() - interval '10 minutes', \
             last_progress_at = now() - interval '10 minutes' WHERE id = $1",
    )
    .bind(c.id)
    .execute(&stores.pg)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE campaign_recipients SET status = 'SENDING', attempt_id = $2, attempts = 1, \
             sending_at = now() - interval '10 minutes' WHERE campaign_id = $1 AND seq <= 4",
    )
    .bind(c.id)
    .bind(attempt)
    .execute(&stores.pg)
    .await
    .unwrap();
    let callback = kloyst_dispatch::callback_data(c.id, 1, attempt);
    sqlx::query(
        "INSERT INTO message_status_events (inbox_id, waba_id, phone_number_id, wa_message_id, status, \
             status_at, recipient_id, payload) \
         VALUES (1, '100000000000001', $1, 'wamid.reached-meta', 'SENT', now(), $2, $3)",
    )
    .bind(PHONE_NUMBER_ID)
    .bind(&c.mobiles[0])
    .bind(json!({"id": "wamid.reached-meta", "status": "sent", "biz_opaque_callback_data": callback}))
    .execute(&stores.pg)
    .await
    .unwrap();
    let env = env(&stores, &sim, 0).with("CAMPAIGN_RECONCILE_INTERVAL", "200ms");
    let worker = RunningService::start::<WorkerPool>(&env).await;
    // The restarted deployment re-plans the campaign (as the watchdog or a redelivery does).
    dispatch(&stores, &c).await;

    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(20)).await;
    assert_eq!(
        (
            done.sent_count,
            done.unknown_count,
            done.failed_count,
            done.pending_count
        ),
        (7, 3, 0, 0)
    );
    let sends = sim.sends().await;
    assert_eq!(sends.len(), 6, "only seq 5..=10 reach the simulator");
    assert_nobody_twice(&sends);
    for claimed_by_the_dead in &c.mobiles[..4] {
        assert!(sends.iter().all(|s| &s.to != claimed_by_the_dead));
    }
    let first: (String, Option<String>) = sqlx::query_as(
        "SELECT status, wa_message_id FROM campaign_recipients WHERE campaign_id = $1 AND seq = 1",
    )
    .bind(c.id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!(
        first,
        ("SENT".to_owned(), Some("wamid.reached-meta".to_owned()))
    );
    let log: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_logs WHERE campaign_id = $1 AND recipient_seq = 1 \
         AND wa_message_id = 'wamid.reached-meta'",
    )
    .bind(c.id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!(log, 1, "its message log is written, so its statuses apply");
    assert_eq!(
        recipient_statuses(&stores, c.id).await,
        vec![("SENT".to_owned(), 7), ("UNKNOWN".to_owned(), 3)]
    );

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn an_expired_token_pauses_the_campaign_without_losing_anyone() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 7, 50).await;
    let env = env(&stores, &sim, 0).with("META_ACCESS_TOKEN", "an-expired-token");
    let worker = RunningService::start::<WorkerPool>(&env).await;
    dispatch(&stores, &c).await;

    let paused = wait_for_status(&stores, c.id, "PAUSED", Duration::from_secs(15)).await;
    assert_eq!(paused.pause_reason.as_deref(), Some("TOKEN_EXPIRED"));
    assert_eq!(
        (paused.sent_count, paused.failed_count, paused.pending_count),
        (0, 0, 50)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        recipient_statuses(&stores, c.id).await,
        vec![("PENDING".to_owned(), 50)],
        "nobody was sent, nobody is lost"
    );
    let max_attempts: i16 =
        sqlx::query_scalar("SELECT max(attempts) FROM campaign_recipients WHERE campaign_id = $1")
            .bind(c.id)
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!(max_attempts, 0, "an unsent attempt is given back");
    assert!(sim.sends().await.is_empty());

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_small_campaign_is_not_starved_by_a_big_one() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let big = campaign(&stores, &sim, 8, 800).await;
    let small = campaign(&stores, &sim, 9, 40).await;
    let env = env(&stores, &sim, 100).with("CAMPAIGN_RANGE_SIZE", "100");
    let worker = RunningService::start::<WorkerPool>(&env).await;
    let started = Instant::now();
    dispatch(&stores, &big).await;
    eventually(Duration::from_secs(10), || async {
        (counters(&stores, big.id).await.sent_count >= 50).then_some(())
    })
    .await
    .expect("the big campaign is sending");
    let small_started = Instant::now();
    dispatch(&stores, &small).await;

    wait_for_status(&stores, small.id, "COMPLETED", Duration::from_secs(20)).await;
    let small_took = small_started.elapsed();
    let big_meanwhile = counters(&stores, big.id).await;
    assert_eq!(
        big_meanwhile.status, "PROCESSING",
        "the small one finished long before"
    );
    // Starved, it would wait for the big one's ~750 sends left; fair, it shares the number's
    // rate and is done while a good part of the big one is still to send (a quiet machine:
    // ~600 left; 2 loaded cores: ~330). Counted in sends, not seconds, so a loaded machine
    // (slower for both) does not change the verdict.
    let big_left = 800 - big_meanwhile.sent_count;
    assert!(
        big_left >= 200,
        "40 recipients took {small_took:?}, and the big campaign had only {big_left} left"
    );
    let big_done = wait_for_status(&stores, big.id, "COMPLETED", Duration::from_secs(30)).await;
    assert_eq!(big_done.sent_count, 800);
    let sends = sim.sends().await;
    assert_eq!(sends.len(), 840);
    assert_nobody_twice(&sends);
    println!(
        "fairness: 40 recipients done in {small_took:?} while 800 took {:?}",
        started.elapsed()
    );

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_due_scheduled_campaign_is_started_by_the_periodic_task_and_sent() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 10, 30).await;
    sqlx::query(
        "UPDATE campaigns SET status = 'SCHEDULED', queued_at = NULL, \
             scheduled_at = now() - interval '5 seconds' WHERE id = $1",
    )
    .bind(c.id)
    .execute(&stores.pg)
    .await
    .unwrap();
    let env = env(&stores, &sim, 0).with("CAMPAIGN_RECONCILE_INTERVAL", "200ms");
    let worker = RunningService::start::<WorkerPool>(&env).await;
    // The scheduler writes the dispatch job to the outbox; the relay publishes it.
    let relay = RunningService::start::<outbox_relay::OutboxRelay>(&env).await;

    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(20)).await;
    assert_eq!(done.sent_count, 30);
    let sends = sim.sends().await;
    assert_eq!(sends.len(), 30);
    assert_nobody_twice(&sends);

    relay.stop().await.unwrap();
    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

/// `cargo test -p worker-pool --test it -- --ignored throughput --nocapture`: the uncapped
/// rate of one worker-pool against the simulator (a debug build is several times slower).
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn throughput_uncapped() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let n = 20_000;
    let c = campaign(&stores, &sim, 11, n).await;
    let worker = RunningService::start::<WorkerPool>(&env(&stores, &sim, 0)).await;
    let started = Instant::now();
    dispatch(&stores, &c).await;
    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(300)).await;
    let elapsed = started.elapsed();
    assert_eq!(done.sent_count, i32::try_from(n).unwrap());
    let sends = sim.sends().await;
    assert_nobody_twice(&sends);
    println!(
        "uncapped: {n} recipients in {elapsed:?} = {:.0} messages/s",
        f64::from(n) / elapsed.as_secs_f64()
    );
    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

/// The achieved rate at the default cap for a one-stripe campaign (the worst case: nothing
/// overlaps the gap between one batch's record and the next claim).
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn throughput_at_the_default_cap() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let n = 800;
    let c = campaign(&stores, &sim, 12, n).await;
    let worker = RunningService::start::<WorkerPool>(&env(&stores, &sim, 80)).await;
    dispatch(&stores, &c).await;
    wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(60)).await;
    let sends = sim.sends().await;
    assert_nobody_twice(&sends);
    let span = (sends.iter().map(|s| s.at).max().unwrap()
        - sends.iter().map(|s| s.at).min().unwrap())
    .to_std()
    .unwrap();
    let busiest = busiest_second(&sends);
    println!(
        "cap 80/s: {n} sends over {span:?} = {:.1}/s ({:.1}% of the cap), busiest second {busiest}",
        f64::from(n - 1) / span.as_secs_f64(),
        f64::from(n - 1) / span.as_secs_f64() / 0.8
    );
    assert!(busiest <= 80);
    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff_and_nobody_is_sent_twice() {
    let stores = TestStores::new().await;
    let sim = Sim::start(Behaviour {
        transient_error_rate: 0.3,
        ..behaviour(0)
    })
    .await;
    let c = campaign(&stores, &sim, 13, 200).await;
    let env = env(&stores, &sim, 0)
        .with("CAMPAIGN_RETRY_BASE", "100ms")
        .with("CAMPAIGN_MAX_ATTEMPTS", "3");
    let worker = RunningService::start::<WorkerPool>(&env).await;
    dispatch(&stores, &c).await;

    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(30)).await;
    let sends = sim.sends().await;
    assert_nobody_twice(&sends);
    assert_eq!(done.sent_count as usize, sends.len());
    assert_eq!(done.sent_count + done.failed_count, 200);
    assert_eq!(done.pending_count, 0);
    // 30% failing: about 27 of 200 fail three times in a row (0.3³ = 2.7%); most retried
    // ones went through.
    let (retried_then_sent, failed_retryable, wrong_failures): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'SENT' AND attempts > 1), \
                count(*) FILTER (WHERE status = 'FAILED' AND retryable AND attempts = 3 \
                                 AND error_code IN (1, 2)), \
                count(*) FILTER (WHERE status = 'FAILED' AND NOT (retryable AND attempts = 3)) \
         FROM campaign_recipients WHERE campaign_id = $1",
    )
    .bind(c.id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert!(retried_then_sent > 20, "{retried_then_sent}");
    assert_eq!(failed_retryable, i64::from(done.failed_count));
    assert_eq!(wrong_failures, 0);
    println!(
        "transient 30%: {retried_then_sent} sent after a retry, {failed_retryable} failed after 3 attempts"
    );

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn the_watchdog_replans_a_campaign_whose_jobs_were_lost() {
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 14, 50).await;
    // PROCESSING for an hour and its range jobs gone (a Redis flush, a bug): nothing moves.
    sqlx::query(
        "UPDATE campaigns SET status = 'PROCESSING', created_at = now() - interval '1 hour', \
             queued_at = now() - interval '1 hour', started_at = now() - interval '1 hour', \
             last_progress_at = now() - interval '1 hour' WHERE id = $1",
    )
    .bind(c.id)
    .execute(&stores.pg)
    .await
    .unwrap();
    let env = env(&stores, &sim, 0)
        .with("CAMPAIGN_RECONCILE_INTERVAL", "200ms")
        .with("CAMPAIGN_WATCHDOG", "30s");
    let worker = RunningService::start::<WorkerPool>(&env).await;

    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(15)).await;
    assert_eq!((done.sent_count, done.pending_count), (50, 0));
    let sends = sim.sends().await;
    assert_eq!(sends.len(), 50);
    assert_nobody_twice(&sends);

    worker.stop().await.unwrap();
    sim.stop().await;
    stores.cleanup_redis().await;
}

/// The real binary killed with SIGKILL mid-campaign, then started again: nobody is sent
/// twice (the simulator's record), and every recipient ends SENT, or UNKNOWN when the kill
/// caught it between Meta's answer and our record (reported, never resent).
#[tokio::test]
async fn a_worker_killed_with_sigkill_mid_campaign_and_restarted_sends_nobody_twice() {
    use kloyst_testkit::{free_port, signal, spawn_binary, wait_until_ready};
    const BIN: &str = env!("CARGO_BIN_EXE_worker-pool");
    let stores = TestStores::new().await;
    let sim = Sim::start(behaviour(0)).await;
    let c = campaign(&stores, &sim, 7, 300).await;
    let vars = |port: u16| -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", stores.database_url.clone()),
            ("REDIS_URL", stores.redis_url.clone()),
            ("REDIS_KEY_PREFIX", stores.redis_prefix.clone()),
            ("METRICS_PORT", port.to_string()),
            ("META_API_BASE", sim.base.clone()),
            ("META_ACCESS_TOKEN", "test-token".into()),
            ("META_WABA_ID", "100000000000001".into()),
            ("META_PHONE_NUMBER_ID", "100000000000002".into()),
            ("META_SEND_RATE", "40".into()),
            // The restarted worker settles what the dead one left SENDING quickly (the lease
            // must still outlast a live batch: about a second of sends plus its record).
            ("CAMPAIGN_SENDING_LEASE", "5s".into()),
            ("CAMPAIGN_RECONCILE_INTERVAL", "500ms".into()),
            ("JOB_VISIBILITY_TIMEOUT", "3s".into()),
        ]
    };
    let port = free_port();
    let mut worker = spawn_binary(BIN, &vars(port));
    assert!(
        wait_until_ready(
            &format!("http://127.0.0.1:{port}/readyz"),
            Duration::from_secs(20)
        )
        .await
    );
    dispatch(&stores, &c).await;
    let started = eventually(Duration::from_secs(20), || async {
        (counters(&stores, c.id).await.sent_count >= 60).then_some(())
    })
    .await;
    if started.is_none() {
        signal(&worker, "KILL").await;
        let mut stderr = String::new();
        use tokio::io::AsyncReadExt;
        worker
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        panic!(
            "sending never started: {:?}\n{stderr}",
            counters(&stores, c.id).await
        );
    }
    signal(&worker, "KILL").await;
    worker.wait().await.unwrap();
    let at_kill = counters(&stores, c.id).await;
    assert_eq!(
        at_kill.status, "PROCESSING",
        "finished before the kill; raise n"
    );

    let port = free_port();
    let _restarted = spawn_binary(BIN, &vars(port));
    let done = wait_for_status(&stores, c.id, "COMPLETED", Duration::from_secs(60)).await;
    assert_eq!(done.pending_count, 0);
    assert_eq!(done.sent_count + done.unknown_count, 300, "{done:?}");
    let sends = sim.sends().await;
    assert_nobody_twice(&sends);
    // Every SENT recipient was accepted by the simulator exactly once.
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM campaign_recipients WHERE campaign_id = $1 AND status = 'SENT'",
    )
    .bind(c.id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert!(
        sends.len() as i64 >= sent,
        "{} sends, {sent} SENT",
        sends.len()
    );
    assert!(sends.len() as i64 <= 300);
    sim.stop().await;
    stores.cleanup_redis().await;
}
