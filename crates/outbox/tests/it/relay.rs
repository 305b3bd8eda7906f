use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kloyst_core::VendorId;
use kloyst_outbox::{claim, enqueue, NewEvent, RelaySettings};
use kloyst_queue::{run_consumer, HandlerError, Queue};
use kloyst_testkit::{eventually, TestStores};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{queue_config, relay, stream_entries, unpublished, STREAM};

fn event(n: usize) -> NewEvent {
    NewEvent {
        stream: STREAM.into(),
        kind: "test.event".into(),
        payload: json!({ "n": n }),
        vendor_id: Some(VendorId::from_uuid(Uuid::nil())),
        correlation_id: Some(format!("req-{n}")),
    }
}

async fn commit_events(stores: &TestStores, count: usize) -> Vec<Uuid> {
    let mut tx = stores.pg.begin().await.unwrap();
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        ids.push(enqueue(&mut tx, &event(n)).await.unwrap());
    }
    tx.commit().await.unwrap();
    ids
}

#[tokio::test]
async fn a_committed_event_arrives_with_its_id_and_correlation_id() {
    let stores = TestStores::new().await;
    let ids = commit_events(&stores, 1).await;

    let moved = relay(&stores, RelaySettings::default())
        .relay_batch()
        .await
        .unwrap();
    assert_eq!(moved, 1);

    let entries = stream_entries(&stores).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["id"], ids[0].to_string());
    assert_eq!(entries[0]["kind"], "test.event");
    assert_eq!(entries[0]["correlation_id"], "req-0");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&entries[0]["payload"]).unwrap(),
        json!({"n": 0})
    );
    assert_eq!(unpublished(&stores).await, 0);
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_rolled_back_event_never_arrives() {
    let stores = TestStores::new().await;
    let mut tx = stores.pg.begin().await.unwrap();
    enqueue(&mut tx, &event(1)).await.unwrap();
    tx.rollback().await.unwrap();

    let moved = relay(&stores, RelaySettings::default())
        .relay_batch()
        .await
        .unwrap();
    assert_eq!(moved, 0);
    assert!(stream_entries(&stores).await.is_empty());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

/// The relay publishes, then dies before marking: its transaction never commits, the
/// rows are unlocked and unpublished, and the next batch publishes them again. The event
/// arrives twice; a consumer applies it once.
#[tokio::test]
async fn a_relay_killed_between_publish_and_mark_loses_nothing_and_consumers_dedupe() {
    let stores = TestStores::new().await;
    let ids = commit_events(&stores, 3).await;
    let first = relay(&stores, RelaySettings::default());
    {
        let mut tx = stores.pg.begin().await.unwrap();
        let rows = claim(&mut tx, 100).await.unwrap();
        assert_eq!(rows.len(), 3);
        first.publish(&rows).await.unwrap();
        // The crash: the transaction (and its row locks) goes away uncommitted.
        drop(tx);
    }
    assert_eq!(unpublished(&stores).await, 3);

    let second = relay(&stores, RelaySettings::default());
    assert_eq!(second.relay_batch().await.unwrap(), 3);
    assert_eq!(unpublished(&stores).await, 0);

    let entries = stream_entries(&stores).await;
    assert_eq!(
        entries.len(),
        6,
        "at least once: every event published twice"
    );
    let distinct: HashSet<&str> = entries.iter().map(|e| e["id"].as_str()).collect();
    assert_eq!(distinct.len(), 3);

    // A consumer with dedupe applies each event once.
    let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
    let queue = Queue::new(stores.redis.clone(), queue_config(&stores), STREAM);
    let consumer = queue.consumer("test-consumers", "c1").await.unwrap();
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(run_consumer(
        consumer,
        {
            let applied = applied.clone();
            move |delivery: kloyst_queue::Delivery| {
                let applied = applied.clone();
                async move {
                    applied.lock().unwrap().push(delivery.message.id.clone());
                    Ok::<(), HandlerError>(())
                }
            }
        },
        shutdown.clone(),
    ));
    let drained = eventually(Duration::from_secs(10), || {
        let queue = queue.clone();
        async move { (queue.stats().await.ok()?.depth == 0).then_some(()) }
    })
    .await;
    shutdown.cancel();
    runner.await.unwrap();
    assert!(drained.is_some(), "the consumer did not drain the stream");
    let applied = applied.lock().unwrap().clone();
    let mut expected: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let mut got = applied.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "each event applied exactly once");
    stores.cleanup_redis().await;
}

/// Several relays on one backlog: SKIP LOCKED shares it out; every event is published
/// exactly once (no crash, so no duplicate) and all are marked.
#[tokio::test]
async fn several_relays_share_the_backlog_without_loss_or_duplicates() {
    let stores = TestStores::new().await;
    let ids = commit_events(&stores, 3000).await;
    let settings = RelaySettings {
        batch_size: 100,
        ..RelaySettings::default()
    };
    let moved = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let relay = relay(&stores, settings.clone());
        let moved = moved.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = relay.relay_batch().await.unwrap();
                if n == 0 {
                    break;
                }
                moved.fetch_add(n, Ordering::SeqCst);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(moved.load(Ordering::SeqCst), 3000);
    assert_eq!(unpublished(&stores).await, 0);
    let entries = stream_entries(&stores).await;
    assert_eq!(entries.len(), 3000);
    let got: HashSet<String> = entries.iter().map(|e| e["id"].clone()).collect();
    let expected: HashSet<String> = ids.iter().map(Uuid::to_string).collect();
    assert_eq!(got, expected);
    stores.cleanup_redis().await;
}

/// A commit wakes the running relay through NOTIFY, long before its (here: one minute)
/// polling fallback would.
#[tokio::test]
async fn the_running_relay_is_woken_by_notify() {
    let stores = TestStores::new().await;
    let relay = relay(
        &stores,
        RelaySettings {
            poll_interval: Duration::from_secs(60),
            ..RelaySettings::default()
        },
    );
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { relay.run(shutdown).await }
    });
    // Let the relay drain the (empty) backlog and start listening.
    let listening = eventually(Duration::from_secs(10), || {
        let pg = stores.pg.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            )
            .fetch_one(&pg)
            .await
            .ok()?;
            (n > 0).then_some(())
        }
    })
    .await;
    assert!(listening.is_some(), "the relay never listened");

    commit_events(&stores, 1).await;
    let arrived = eventually(Duration::from_secs(5), || {
        let stores = &stores;
        async move { (!stream_entries(stores).await.is_empty()).then_some(()) }
    })
    .await;
    assert!(
        arrived.is_some(),
        "the event was not relayed within 5 s of its commit"
    );
    shutdown.cancel();
    running.await.unwrap();
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn published_events_past_retention_are_pruned_and_unpublished_ones_kept() {
    let stores = TestStores::new().await;
    commit_events(&stores, 5).await;
    relay(&stores, RelaySettings::default())
        .relay_batch()
        .await
        .unwrap();
    commit_events(&stores, 2).await;
    sqlx::query("UPDATE outbox_events SET published_at = now() - interval '8 days' WHERE published_at IS NOT NULL")
        .execute(&stores.pg)
        .await
        .unwrap();
    let mut conn = stores.pg.acquire().await.unwrap();
    let pruned = kloyst_outbox::prune_published(&mut conn, Duration::from_secs(7 * 86400), 1000)
        .await
        .unwrap();
    assert_eq!(pruned, 5);
    assert_eq!(unpublished(&stores).await, 2);
    stores.cleanup_redis().await;
}
