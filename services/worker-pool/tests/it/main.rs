//! worker-pool against the real Postgres and Redis: job routing, dead letters, and the whole
//! pipeline from a committed outbox event to a handler.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod campaigns;
mod imports;
mod mail;
mod support;
mod templates;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kloyst_config::Env;
use kloyst_http::service::Service;
use kloyst_outbox::enqueue_job;
use kloyst_queue::{Delivery, Job, OutgoingMessage, Queue, QueueConfig};
use kloyst_testkit::{eventually, RunningService, TestStores};
use outbox_relay::OutboxRelay;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use worker_pool::{JobRouter, WorkerPool, CONSUMER_GROUP, JOBS_STREAM};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Greet {
    name: String,
}

impl Job for Greet {
    const KIND: &'static str = "test.greet";
}

type Seen = Arc<Mutex<Vec<(Greet, Option<String>)>>>;

/// A worker-pool with one test job registered, on port 0.
async fn start_worker(
    env: &Env,
    seen: Seen,
) -> (String, CancellationToken, tokio::task::JoinHandle<()>) {
    let router = JobRouter::new().register::<Greet, _, _>(move |job: Greet, delivery: Delivery| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push((job, delivery.message.correlation_id.clone()));
            Ok(())
        }
    });
    let config = WorkerPool::from_env(env).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { config.run_with(router, listener, shutdown).await.unwrap() }
    });
    (base, shutdown, task)
}

fn jobs_queue(stores: &TestStores) -> Queue {
    Queue::new(
        stores.redis.clone(),
        QueueConfig::with_prefix(stores.redis_prefix.clone()),
        JOBS_STREAM,
    )
}

#[tokio::test]
async fn a_committed_outbox_event_reaches_its_handler_with_the_request_id() {
    let stores = TestStores::new().await;
    let seen: Seen = Arc::default();
    let (base, shutdown, worker) = start_worker(&stores.env(), seen.clone()).await;
    let relay = RunningService::start::<OutboxRelay>(&stores.env()).await;

    let mut tx = stores.pg.begin().await.unwrap();
    enqueue_job(
        &mut tx,
        JOBS_STREAM,
        &Greet {
            name: "Asha".into(),
        },
        None,
        Some("req-42".into()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let handled = eventually(Duration::from_secs(10), || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().first().cloned() }
    })
    .await;
    assert_eq!(
        handled,
        Some((
            Greet {
                name: "Asha".into()
            },
            Some("req-42".into())
        ))
    );

    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("queue_processed_total"), "{metrics}");

    relay.stop().await.unwrap();
    shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "handled once");
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_job_kind_without_a_handler_is_dead_lettered_with_the_reason() {
    let stores = TestStores::new().await;
    let (_, shutdown, worker) = start_worker(&stores.env(), Arc::default()).await;
    let queue = jobs_queue(&stores);
    queue
        .publish(&OutgoingMessage::new(
            "billing.unknown",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    let dead = eventually(Duration::from_secs(10), || {
        let queue = queue.clone();
        async move { queue.dead_letters(10).await.ok().filter(|d| !d.is_empty()) }
    })
    .await
    .expect("dead-lettered");
    assert!(
        dead[0]
            .error
            .contains("no handler registered for job kind \"billing.unknown\""),
        "{}",
        dead[0].error
    );
    shutdown.cancel();
    worker.await.unwrap();
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_payload_that_does_not_decode_is_dead_lettered_not_retried() {
    let stores = TestStores::new().await;
    let seen: Seen = Arc::default();
    let (_, shutdown, worker) = start_worker(&stores.env(), seen.clone()).await;
    let queue = jobs_queue(&stores);
    queue
        .publish(&OutgoingMessage::new(
            Greet::KIND,
            serde_json::json!({ "nom": 3 }),
        ))
        .await
        .unwrap();
    let dead = eventually(Duration::from_secs(10), || {
        let queue = queue.clone();
        async move { queue.dead_letters(10).await.ok().filter(|d| !d.is_empty()) }
    })
    .await
    .expect("dead-lettered");
    assert_eq!(
        dead[0].message.as_ref().map(|m| m.attempt),
        Some(1),
        "not retried"
    );
    assert!(seen.lock().unwrap().is_empty());
    shutdown.cancel();
    worker.await.unwrap();
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn every_copy_of_the_worker_joins_one_consumer_group() {
    let stores = TestStores::new().await;
    let seen: Seen = Arc::default();
    let (_, stop_a, a) = start_worker(&stores.env(), seen.clone()).await;
    let (_, stop_b, b) = start_worker(&stores.env(), seen.clone()).await;
    let queue = jobs_queue(&stores);
    let batch: Vec<OutgoingMessage> = (0..200)
        .map(|n| {
            OutgoingMessage::from_job(&Greet {
                name: format!("n{n}"),
            })
            .unwrap()
        })
        .collect();
    queue.publish_batch(&batch).await.unwrap();
    let all = eventually(Duration::from_secs(10), || {
        let seen = seen.clone();
        async move { (seen.lock().unwrap().len() >= 200).then_some(()) }
    })
    .await;
    assert!(all.is_some());
    stop_a.cancel();
    stop_b.cancel();
    a.await.unwrap();
    b.await.unwrap();
    let names: std::collections::HashSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(g, _)| g.name.clone())
        .collect();
    assert_eq!(names.len(), 200, "each job handled once across both copies");
    assert_eq!(seen.lock().unwrap().len(), 200);

    let mut conn = stores.redis.get().await.unwrap();
    let groups: Vec<std::collections::HashMap<String, kloyst_queue::redis::Value>> =
        kloyst_queue::redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&queue.keys().stream)
            .query_async(&mut conn)
            .await
            .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        kloyst_queue::redis::from_redis_value::<String>(groups[0]["name"].clone()).unwrap(),
        CONSUMER_GROUP
    );
    stores.cleanup_redis().await;
}
