use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kloyst_queue::{
    run_consumer, Delivery, HandlerError, OutgoingMessage, Queue, QueueConfig, RunReport,
};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{cleanup, config, eventually, pool_for, queue, queue_with, SendTemplate};
use kloyst_testkit::{TcpProxy, TestStores};

fn start<H: kloyst_queue::Handler>(
    consumer: kloyst_queue::Consumer,
    handler: H,
) -> (CancellationToken, JoinHandle<RunReport>) {
    let shutdown = CancellationToken::new();
    (
        shutdown.clone(),
        tokio::spawn(run_consumer(consumer, handler, shutdown)),
    )
}

async fn stop(shutdown: CancellationToken, runner: JoinHandle<RunReport>) -> RunReport {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .expect("runner returns promptly after shutdown")
        .expect("runner does not panic")
}

async fn drained(q: &Queue) {
    eventually(Duration::from_secs(5), "queue drained", || async {
        let s = q.stats().await.unwrap();
        (s.depth == 0 && s.delayed == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn processes_every_message_once_then_stops_cleanly() {
    const N: usize = 200;
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let msgs: Vec<_> = (0..N)
        .map(|n| OutgoingMessage::new("n", json!(n)))
        .collect();
    q.publish_batch(&msgs).await.unwrap();

    let seen = Arc::new(Mutex::new(HashSet::new()));
    let handler = {
        let seen = Arc::clone(&seen);
        move |d: Delivery| {
            let seen = Arc::clone(&seen);
            async move {
                assert!(seen.lock().unwrap().insert(d.message.id), "handled twice");
                Ok::<(), HandlerError>(())
            }
        }
    };
    let (shutdown, runner) = start(consumer, handler);
    drained(&q).await;
    let report = stop(shutdown, runner).await;

    assert_eq!(seen.lock().unwrap().len(), N);
    assert_eq!(report.processed, N as u64);
    assert_eq!(
        report,
        RunReport {
            processed: N as u64,
            ..RunReport::default()
        }
    );
    assert_eq!(q.stats().await.unwrap().pending, 0);
    cleanup(&q).await;
}

#[tokio::test]
async fn retries_with_backoff_and_dead_letters_permanent_failures() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    q.publish_batch(&[
        OutgoingMessage::new("flaky", json!({})),
        OutgoingMessage::new("bad", json!({})),
        // Right kind, payload that cannot decode: `?` turns it into a permanent failure.
        OutgoingMessage::new("dispatch.send_template", json!({"to": 1})),
    ])
    .await
    .unwrap();

    let handler = |d: Delivery| async move {
        match d.message.kind.as_str() {
            "flaky" if d.message.attempt == 1 => Err(HandlerError::retry("Meta returned 503")),
            "flaky" => Ok(()),
            "bad" => Err(HandlerError::permanent("recipient not on WhatsApp")),
            _ => {
                let _job: SendTemplate = d.decode()?;
                Ok(())
            }
        }
    };
    let (shutdown, runner) = start(consumer, handler);
    eventually(Duration::from_secs(5), "all settled", || async {
        let s = q.stats().await.unwrap();
        (s.depth == 0 && s.delayed == 0 && s.dead == 2).then_some(())
    })
    .await;
    let report = stop(shutdown, runner).await;
    assert_eq!(
        (report.processed, report.retried, report.dead_lettered),
        (1, 1, 2)
    );
    let errors: HashSet<String> = q
        .dead_letters(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.error)
        .collect();
    assert!(errors.contains("recipient not on WhatsApp"));
    cleanup(&q).await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_jobs() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    q.publish_batch(
        &(0..3)
            .map(|n| OutgoingMessage::new("slow", json!(n)))
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();

    let started = Arc::new(AtomicUsize::new(0));
    let handler = {
        let started = Arc::clone(&started);
        move |_: Delivery| {
            let started = Arc::clone(&started);
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<(), HandlerError>(())
            }
        }
    };
    let (shutdown, runner) = start(consumer, handler);
    eventually(Duration::from_secs(3), "all three started", || async {
        (started.load(Ordering::SeqCst) == 3).then_some(())
    })
    .await;
    let report = stop(shutdown, runner).await;
    assert_eq!((report.processed, report.abandoned), (3, 0));
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending), (0, 0));
    cleanup(&q).await;
}

#[tokio::test]
async fn jobs_abandoned_at_shutdown_are_handed_back_to_another_consumer() {
    let q = queue_with(QueueConfig {
        shutdown_grace: Duration::from_millis(100),
        ..config()
    });
    q.publish(&OutgoingMessage::new("stuck", json!({})))
        .await
        .unwrap();

    let started = Arc::new(AtomicUsize::new(0));
    let hanging = {
        let started = Arc::clone(&started);
        move |_: Delivery| {
            let started = Arc::clone(&started);
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<(), HandlerError>(())
            }
        }
    };
    let (shutdown, runner) = start(q.consumer("workers", "old-pod").await.unwrap(), hanging);
    eventually(Duration::from_secs(3), "handler started", || async {
        (started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    let report = stop(shutdown, runner).await;
    assert_eq!((report.processed, report.abandoned), (0, 1));
    assert_eq!(
        q.stats().await.unwrap().pending,
        1,
        "left pending, not lost"
    );

    let handled = Arc::new(AtomicUsize::new(0));
    let quick = {
        let handled = Arc::clone(&handled);
        move |_: Delivery| {
            let handled = Arc::clone(&handled);
            async move {
                handled.fetch_add(1, Ordering::SeqCst);
                Ok::<(), HandlerError>(())
            }
        }
    };
    let (shutdown, runner) = start(q.consumer("workers", "new-pod").await.unwrap(), quick);
    drained(&q).await;
    let report = stop(shutdown, runner).await;
    assert_eq!((report.processed, handled.load(Ordering::SeqCst)), (1, 1));
    cleanup(&q).await;
}

#[tokio::test]
async fn the_runner_survives_redis_going_away() {
    let flaky = TcpProxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let cfg = config();
    // The runner talks through the proxy; the test publishes directly.
    let through_proxy = Queue::new(
        pool_for(&TestStores::redis_url_via(flaky.addr())),
        cfg.clone(),
        "jobs",
    );
    let q = queue_with(cfg);
    let consumer = through_proxy.consumer("workers", "w1").await.unwrap();

    let handled = Arc::new(AtomicUsize::new(0));
    let handler = {
        let handled = Arc::clone(&handled);
        move |_: Delivery| {
            let handled = Arc::clone(&handled);
            async move {
                handled.fetch_add(1, Ordering::SeqCst);
                Ok::<(), HandlerError>(())
            }
        }
    };
    let (shutdown, runner) = start(consumer, handler);
    let batch = |from: usize| {
        (from..from + 5)
            .map(|n| OutgoingMessage::new("n", json!(n)))
            .collect::<Vec<_>>()
    };
    q.publish_batch(&batch(0)).await.unwrap();
    drained(&q).await;

    flaky.cut().await;
    q.publish_batch(&batch(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!runner.is_finished(), "Redis errors must not end the loop");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        5,
        "the proxy really cut the runner off"
    );
    flaky.restore();

    drained(&q).await;
    eventually(Duration::from_secs(5), "all ten handled", || async {
        (handled.load(Ordering::SeqCst) == 10).then_some(())
    })
    .await;
    let report = stop(shutdown, runner).await;
    assert_eq!(report.processed, 10);
    cleanup(&q).await;
}

#[tokio::test]
async fn the_runner_recreates_a_group_lost_with_the_data() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let handler = {
        let handled = Arc::clone(&handled);
        move |_: Delivery| {
            let handled = Arc::clone(&handled);
            async move {
                handled.fetch_add(1, Ordering::SeqCst);
                Ok::<(), HandlerError>(())
            }
        }
    };
    let (shutdown, runner) = start(consumer, handler);
    // A Redis restarted without persistence: stream and group are gone.
    let mut conn = crate::helpers::raw_conn().await;
    let _: () = kloyst_queue::redis::cmd("DEL")
        .arg(&q.keys().stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    q.publish(&OutgoingMessage::new("after-restart", json!({})))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "handled after the restart",
        || async { (handled.load(Ordering::SeqCst) == 1).then_some(()) },
    )
    .await;
    stop(shutdown, runner).await;
    cleanup(&q).await;
}
