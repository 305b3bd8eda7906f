use std::time::Duration;

use kloyst_queue::{OutgoingMessage, QueueStats};
use serde_json::json;

use crate::helpers::{cleanup, queue};

#[tokio::test]
async fn an_untouched_queue_reports_zeros() {
    let q = queue();
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
    // Also with the group made (empty stream exists).
    q.consumer("workers", "w1").await.unwrap();
    assert_eq!(q.record_metrics().await.unwrap(), QueueStats::default());
    cleanup(&q).await;
}

#[tokio::test]
async fn stats_follow_the_work() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let msgs: Vec<_> = (0..5)
        .map(|n| OutgoingMessage::new("n", json!(n)))
        .collect();
    q.publish_batch(&msgs).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;

    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending, s.delayed, s.dead), (5, 0, 0, 0));
    assert!(
        s.oldest_age >= Duration::from_millis(100) && s.oldest_age < Duration::from_secs(10),
        "age of the oldest waiting entry: {:?}",
        s.oldest_age
    );

    let got = consumer.fetch(3, Duration::ZERO).await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending), (5, 3));

    consumer.ack(&got[0]).await.unwrap();
    consumer
        .retry_after(&got[1], "later", Duration::from_secs(60))
        .await
        .unwrap();
    consumer.dead_letter(&got[2], "no").await.unwrap();
    let s = q.record_metrics().await.unwrap();
    assert_eq!((s.depth, s.pending, s.delayed, s.dead), (2, 0, 1, 1));

    let rest = consumer.fetch(10, Duration::ZERO).await.unwrap();
    for d in &rest {
        consumer.ack(d).await.unwrap();
    }
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending, s.oldest_age), (0, 0, Duration::ZERO));
    cleanup(&q).await;
}
