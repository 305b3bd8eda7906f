use std::time::Duration;

use kloyst_queue::{OutgoingMessage, QueueConfig, RetryOutcome};
use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{cleanup, config, eventually, queue, queue_with};

#[tokio::test]
async fn retry_waits_then_is_promoted_with_attempt_incremented() {
    let q = queue_with(QueueConfig {
        backoff_base: Duration::from_millis(150),
        backoff_max: Duration::from_millis(150),
        ..config()
    });
    let consumer = q.consumer("workers", "w1").await.unwrap();
    // Escapes, control characters and non-ASCII must survive the trip through Lua's cjson.
    let payload =
        json!({"k": "v \"quoted\" \\ \n \u{0} ✓ 🙂", "big": 12345678901234567_u64, "f": 0.1});
    let msg = OutgoingMessage::new("flaky", payload).with_correlation_id(Some("req-9".into()));
    q.publish(&msg).await.unwrap();
    let d = consumer.fetch(1, Duration::ZERO).await.unwrap().remove(0);

    let scheduled_at = Instant::now();
    let outcome = consumer.retry(&d, "meta timed out").await.unwrap();
    let RetryOutcome::Scheduled { delay } = outcome else {
        panic!("expected a scheduled retry, got {outcome:?}");
    };
    assert!(delay <= Duration::from_millis(150));
    let s = q.stats().await.unwrap();
    assert_eq!(
        (s.depth, s.pending, s.delayed),
        (0, 0, 1),
        "the original is acked and deleted"
    );

    eventually(Duration::from_secs(3), "promotion", || async {
        (q.promote_due().await.unwrap() == 1).then_some(())
    })
    .await;
    // Redis' clock and ours agree on this machine to well under the slack allowed.
    assert!(scheduled_at.elapsed() + Duration::from_millis(10) >= delay);

    let again = consumer.fetch(1, Duration::ZERO).await.unwrap().remove(0);
    assert_ne!(again.entry_id, d.entry_id);
    assert_eq!(again.message.attempt, 2);
    assert_eq!(again.message.id, d.message.id);
    assert_eq!(
        again.message.payload, d.message.payload,
        "payload text byte for byte"
    );
    assert_eq!(again.message.payload_json().unwrap(), msg.payload);
    assert_eq!(again.message.correlation_id.as_deref(), Some("req-9"));
    assert_eq!(again.message.enqueued_at_ms, d.message.enqueued_at_ms);
    assert_eq!(q.stats().await.unwrap().delayed, 0);
    cleanup(&q).await;
}

#[tokio::test]
async fn retry_after_is_not_promoted_before_its_time() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    q.publish(&OutgoingMessage::new("rate-limited", json!(null)))
        .await
        .unwrap();
    let d = consumer.fetch(1, Duration::ZERO).await.unwrap().remove(0);

    let started = Instant::now();
    let outcome = consumer
        .retry_after(&d, "429", Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RetryOutcome::Scheduled {
            delay: Duration::from_millis(300)
        }
    );
    assert_eq!(q.promote_due().await.unwrap(), 0, "not due yet");
    assert!(consumer.fetch(1, Duration::ZERO).await.unwrap().is_empty());

    eventually(Duration::from_secs(3), "promotion", || async {
        (q.promote_due().await.unwrap() == 1).then_some(())
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(290));
    cleanup(&q).await;
}

#[tokio::test]
async fn dead_lettered_after_max_attempts_with_the_error() {
    let q = queue_with(QueueConfig {
        max_attempts: 3,
        backoff_base: Duration::ZERO,
        ..config()
    });
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let msg =
        OutgoingMessage::new("doomed", json!({"x": 1})).with_correlation_id(Some("req-1".into()));
    q.publish(&msg).await.unwrap();

    let mut outcomes = Vec::new();
    for attempt in 1..=3 {
        let d = eventually(Duration::from_secs(2), "the next attempt", || async {
            q.promote_due().await.unwrap();
            consumer.fetch(1, Duration::ZERO).await.unwrap().pop()
        })
        .await;
        assert_eq!(d.message.attempt, attempt);
        outcomes.push(
            consumer
                .retry(&d, &format!("boom {attempt}"))
                .await
                .unwrap(),
        );
    }
    assert!(matches!(outcomes[0], RetryOutcome::Scheduled { .. }));
    assert!(matches!(outcomes[1], RetryOutcome::Scheduled { .. }));
    assert_eq!(outcomes[2], RetryOutcome::DeadLettered);

    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    assert!(
        letter.error.contains("boom 3") && letter.error.contains("3 attempts"),
        "{}",
        letter.error
    );
    let original = letter.message.as_ref().expect("original fields kept");
    assert_eq!(original.id, msg.id);
    assert_eq!(original.kind, "doomed");
    assert_eq!(original.attempt, 3);
    assert_eq!(original.correlation_id.as_deref(), Some("req-1"));
    assert_eq!(original.payload_json().unwrap(), msg.payload);
    let now = chrono::Utc::now().timestamp_millis() as u64;
    assert!(letter.failed_at_ms <= now + 1_000 && letter.failed_at_ms + 5_000 > now);
    assert!(letter.original_entry_id.is_some());

    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending, s.delayed, s.dead), (0, 0, 0, 1));
    cleanup(&q).await;
}

#[tokio::test]
async fn permanent_failures_go_straight_to_dead_letters_once() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    q.publish(&OutgoingMessage::new("bad", json!({})))
        .await
        .unwrap();
    let d = consumer.fetch(1, Duration::ZERO).await.unwrap().remove(0);

    assert!(consumer
        .dead_letter(&d, "template rejected by Meta")
        .await
        .unwrap());
    // Settling it again (a duplicate handler) does nothing.
    assert!(!consumer.dead_letter(&d, "again").await.unwrap());
    assert_eq!(
        consumer.retry(&d, "again").await.unwrap(),
        RetryOutcome::NotPending
    );

    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error, "template rejected by Meta");
    assert_eq!(dead[0].message.as_ref().map(|m| m.attempt), Some(1));
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending, s.delayed, s.dead), (0, 0, 0, 1));
    cleanup(&q).await;
}
