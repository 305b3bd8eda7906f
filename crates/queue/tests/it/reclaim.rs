use std::time::Duration;

use kloyst_queue::{OutgoingMessage, QueueConfig};
use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{cleanup, config, eventually, queue, queue_with};

#[tokio::test]
async fn a_dead_consumers_message_is_reclaimed_after_the_visibility_timeout() {
    let q = queue();
    q.publish(&OutgoingMessage::new("job", json!({"n": 1})))
        .await
        .unwrap();

    let dying = q.consumer("workers", "dying").await.unwrap();
    let held = dying.fetch(1, Duration::ZERO).await.unwrap().remove(0);
    let fetched_at = Instant::now();
    drop(dying); // dies without acknowledging

    let rescuer = q.consumer("workers", "rescuer").await.unwrap();
    assert!(
        rescuer.fetch(1, Duration::ZERO).await.unwrap().is_empty(),
        "nothing new to read"
    );
    // Under load the test itself may take longer than the timeout to get here: then the
    // early claim legitimately succeeds, and it must still be the same entry.
    let mut early = rescuer.reclaim(10).await.unwrap();
    let got = if early.is_empty() {
        eventually(Duration::from_secs(3), "re-claim", || async {
            let mut got = rescuer.reclaim(10).await.unwrap();
            (!got.is_empty()).then(|| got.remove(0))
        })
        .await
    } else {
        early.remove(0)
    };
    assert!(
        fetched_at.elapsed() >= Duration::from_millis(200),
        "not reclaimed before the visibility timeout"
    );
    assert_eq!(got, held, "same entry, same message");

    rescuer.ack(&got).await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending), (0, 0));
    cleanup(&q).await;
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_after_too_many_deliveries() {
    let q = queue_with(QueueConfig {
        max_attempts: 2,
        ..config()
    });
    q.publish(&OutgoingMessage::new("poison", json!({})))
        .await
        .unwrap();

    // Delivery 1: its consumer crashes.
    let first = q.consumer("workers", "c1").await.unwrap();
    assert_eq!(first.fetch(1, Duration::ZERO).await.unwrap().len(), 1);
    drop(first);

    // Delivery 2 (the re-claim): still within max_attempts, so handed out; crashes again.
    let second = q.consumer("workers", "c2").await.unwrap();
    let got = eventually(Duration::from_secs(3), "first re-claim", || async {
        let got = second.reclaim(10).await.unwrap();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(got.len(), 1);
    drop(second);

    // Delivery 3 would exceed max_attempts: dead-lettered instead of handed out.
    let third = q.consumer("workers", "c3").await.unwrap();
    eventually(Duration::from_secs(3), "poison dead-lettered", || async {
        assert!(
            third.reclaim(10).await.unwrap().is_empty(),
            "poison must not be handed out"
        );
        (q.stats().await.unwrap().dead == 1).then_some(())
    })
    .await;
    let dead = q.dead_letters(10).await.unwrap();
    assert!(
        dead[0].error.contains("delivered 3 times"),
        "{}",
        dead[0].error
    );
    assert_eq!(
        dead[0].message.as_ref().map(|m| m.kind.as_str()),
        Some("poison")
    );
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending), (0, 0));
    cleanup(&q).await;
}
