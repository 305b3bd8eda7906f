use std::collections::HashSet;
use std::time::Duration;

use kloyst_queue::{OutgoingMessage, QueueConfig, RetryOutcome};
use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::{cleanup, config, queue_with};

#[tokio::test]
async fn concurrent_promote_due_never_duplicates_or_loses() {
    const N: usize = 300;
    // Small batches so the promoting tasks interleave many times.
    let q = queue_with(QueueConfig {
        promote_batch: 7,
        ..config()
    });
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let msgs: Vec<OutgoingMessage> = (0..N)
        .map(|n| OutgoingMessage::new("n", json!(n)).with_id(format!("m{n}")))
        .collect();
    q.publish_batch(&msgs).await.unwrap();
    let deliveries = consumer.fetch(N, Duration::ZERO).await.unwrap();
    assert_eq!(deliveries.len(), N);
    for d in &deliveries {
        let outcome = consumer
            .retry_after(d, "later", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            RetryOutcome::Scheduled {
                delay: Duration::ZERO
            }
        );
    }
    assert_eq!(q.stats().await.unwrap().delayed, N as u64);

    let mut promoters = JoinSet::new();
    for _ in 0..8 {
        let q = q.clone();
        promoters.spawn(async move {
            let mut moved = 0;
            loop {
                match q.promote_due().await.unwrap() {
                    0 => return moved,
                    n => moved += n,
                }
            }
        });
    }
    let mut total = 0;
    while let Some(moved) = promoters.join_next().await {
        total += moved.unwrap();
    }
    assert_eq!(total, N);

    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.delayed), (N as u64, 0));
    let again = consumer.fetch(N + 10, Duration::ZERO).await.unwrap();
    let ids: HashSet<&str> = again.iter().map(|d| d.message.id.as_str()).collect();
    assert_eq!((again.len(), ids.len()), (N, N), "each exactly once");
    assert!(again.iter().all(|d| d.message.attempt == 2));
    cleanup(&q).await;
}
