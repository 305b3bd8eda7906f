//! The outbox-relay binary, killed with SIGKILL mid-backlog and restarted: every event
//! still arrives.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

use std::collections::HashSet;
use std::time::Duration;

use kloyst_queue::{redis, Keys};
use kloyst_testkit::{eventually, free_port, signal, spawn_binary, wait_until_ready, TestStores};

const BIN: &str = env!("CARGO_BIN_EXE_outbox-relay");
const EVENTS: i64 = 50_000;

fn vars(stores: &TestStores, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("REDIS_URL", stores.redis_url.clone()),
        ("REDIS_KEY_PREFIX", stores.redis_prefix.clone()),
        ("METRICS_PORT", port.to_string()),
        // Small batches so the kill lands mid-backlog.
        ("OUTBOX_BATCH_SIZE", "200".into()),
    ]
}

async fn published(stores: &TestStores) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE published_at IS NOT NULL")
        .fetch_one(&stores.pg)
        .await
        .unwrap()
}

async fn stream_ids(stores: &TestStores) -> Vec<String> {
    let key = Keys::new(&stores.redis_prefix, "jobs").stream;
    let mut conn = stores.redis.get().await.unwrap();
    let mut ids = Vec::new();
    let mut start = "-".to_owned();
    loop {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        let Some(last) = reply.ids.last() else { break };
        start = format!("({}", last.id);
        for entry in &reply.ids {
            ids.push(entry.get::<String>("id").unwrap());
        }
    }
    ids
}

#[tokio::test]
async fn sigkill_mid_backlog_then_restart_delivers_every_event() {
    let stores = TestStores::new().await;
    sqlx::query(
        "INSERT INTO outbox_events (stream, kind, payload)
         SELECT 'jobs', 'test.event', jsonb_build_object('n', n) FROM generate_series(1, $1) n",
    )
    .bind(EVENTS)
    .execute(&stores.pg)
    .await
    .unwrap();

    let port = free_port();
    let mut relay = spawn_binary(BIN, &vars(&stores, port));
    let started = eventually(Duration::from_secs(30), || {
        let stores = &stores;
        async move { (published(stores).await > 0).then_some(()) }
    })
    .await;
    assert!(started.is_some(), "the relay published nothing");
    signal(&relay, "KILL").await;
    relay.wait().await.unwrap();
    let at_kill = published(&stores).await;
    assert!(
        at_kill < EVENTS,
        "the relay finished before it could be killed; raise EVENTS"
    );

    let port = free_port();
    let mut restarted = spawn_binary(BIN, &vars(&stores, port));
    assert!(
        wait_until_ready(
            &format!("http://127.0.0.1:{port}/readyz"),
            Duration::from_secs(20)
        )
        .await
    );
    let done = eventually(Duration::from_secs(60), || {
        let stores = &stores;
        async move { (published(stores).await == EVENTS).then_some(()) }
    })
    .await;
    assert!(
        done.is_some(),
        "not every event was published after the restart"
    );

    let expected: HashSet<String> =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT event_id FROM outbox_events")
            .fetch_all(&stores.pg)
            .await
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
    let ids = stream_ids(&stores).await;
    let got: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(got, expected, "every committed event is in the stream");
    // At least once: only the batch in flight at the kill may appear twice.
    assert!(
        ids.len() as i64 - EVENTS <= 200,
        "{} duplicates",
        ids.len() as i64 - EVENTS
    );

    signal(&restarted, "TERM").await;
    let status = restarted.wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "graceful exit on SIGTERM");
    stores.cleanup_redis().await;
}
