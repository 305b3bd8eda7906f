use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kloyst_queue::{done_key, run_consumer, Delivery, HandlerError, OutgoingMessage, QueueConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{cleanup, config, eventually, queue, queue_with};

#[tokio::test]
async fn done_marks_are_set_once_and_expire() {
    let q = queue();
    assert!(!q.already_done("workers", "evt-1").await.unwrap());
    assert!(q
        .mark_done("workers", "evt-1", Duration::from_secs(60))
        .await
        .unwrap());
    assert!(q.already_done("workers", "evt-1").await.unwrap());
    assert!(
        !q.mark_done("workers", "evt-1", Duration::from_secs(60))
            .await
            .unwrap(),
        "SET NX"
    );
    // Marks are per group.
    assert!(!q.already_done("billing", "evt-1").await.unwrap());
    assert_eq!(
        done_key(&q.config().prefix, "workers", "evt-1"),
        format!("{}:done:workers:evt-1", q.config().prefix)
    );

    assert!(q
        .mark_done("workers", "evt-2", Duration::from_millis(100))
        .await
        .unwrap());
    eventually(Duration::from_secs(2), "mark expiry", || async {
        (!q.already_done("workers", "evt-2").await.unwrap()).then_some(())
    })
    .await;
    cleanup(&q).await;
}

#[tokio::test]
async fn the_runner_applies_a_redelivered_message_once() {
    // Concurrency 1 so the duplicate is handled after the first copy is marked done.
    let q = queue_with(QueueConfig {
        concurrency: 1,
        ..config()
    });
    let consumer = q.consumer("workers", "w1").await.unwrap();
    // The outbox relay published event evt-7 twice (it died before marking it published).
    let msg = OutgoingMessage::new("charge", json!({"paise": 100})).with_id("evt-7");
    q.publish_batch(&[msg.clone(), msg]).await.unwrap();

    let applied = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&applied);
    let handler = move |_: Delivery| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<(), HandlerError>(())
        }
    };
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(run_consumer(consumer, handler, shutdown.clone()));
    eventually(Duration::from_secs(3), "both entries settled", || async {
        (q.stats().await.unwrap().depth == 0).then_some(())
    })
    .await;
    shutdown.cancel();
    let report = runner.await.unwrap();
    assert_eq!(applied.load(Ordering::SeqCst), 1);
    assert_eq!((report.processed, report.duplicates), (1, 1));
    cleanup(&q).await;
}

/// Both copies fetched in one batch and handled at the same time (concurrency > 1): the
/// claim lets one through; the other is found done once re-claimed, and acknowledged.
#[tokio::test]
async fn concurrent_copies_of_one_message_are_applied_once() {
    let q = queue_with(QueueConfig {
        concurrency: 8,
        ..config()
    });
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let msg = OutgoingMessage::new("charge", json!({"paise": 100})).with_id("evt-9");
    q.publish_batch(&[msg.clone(), msg.clone(), msg])
        .await
        .unwrap();

    let applied = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&applied);
    let handler = move |_: Delivery| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            // Long enough that the other copies arrive while this one is in progress.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<(), HandlerError>(())
        }
    };
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(run_consumer(consumer, handler, shutdown.clone()));
    eventually(Duration::from_secs(5), "all copies settled", || async {
        (q.stats().await.unwrap().depth == 0).then_some(())
    })
    .await;
    shutdown.cancel();
    let report = runner.await.unwrap();
    assert_eq!(applied.load(Ordering::SeqCst), 1);
    assert_eq!((report.processed, report.duplicates), (1, 2));
    cleanup(&q).await;
}

/// A failed attempt gives its claim back, so the retry is not mistaken for a duplicate.
#[tokio::test]
async fn a_failed_attempt_releases_its_claim() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    q.publish(&OutgoingMessage::new("flaky", json!({})).with_id("evt-10"))
        .await
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let handler = move |_: Delivery| {
        let counter = Arc::clone(&counter);
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(HandlerError::retry("first attempt fails"))
            } else {
                Ok(())
            }
        }
    };
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(run_consumer(consumer, handler, shutdown.clone()));
    eventually(Duration::from_secs(5), "the retry succeeded", || async {
        q.already_done("workers", "evt-10")
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    shutdown.cancel();
    let report = runner.await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!((report.retried, report.processed), (1, 1));
    cleanup(&q).await;
}
