use std::time::Duration;

use kloyst_queue::redis::AsyncCommands;
use kloyst_queue::{OutgoingMessage, QueueError};
use serde_json::json;

use crate::helpers::{cleanup, queue, raw_conn, ChargeWallet, SendTemplate};

#[tokio::test]
async fn publish_fetch_ack() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let msg = OutgoingMessage::new("ping", json!({"hello": "world", "n": 1}))
        .with_correlation_id(Some("req-123".into()));
    let before = chrono::Utc::now().timestamp_millis() as u64;
    let entry_id = q.publish(&msg).await.unwrap();

    let got = consumer.fetch(10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    let d = &got[0];
    assert_eq!(d.entry_id, entry_id);
    assert_eq!(d.message.id, msg.id);
    assert_eq!(d.message.kind, "ping");
    assert_eq!(d.message.payload_json().unwrap(), msg.payload);
    assert_eq!(d.message.attempt, 1);
    assert_eq!(d.message.correlation_id.as_deref(), Some("req-123"));
    assert!(d.message.enqueued_at_ms >= before && d.message.enqueued_at_ms < before + 5_000);

    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending), (1, 1));
    // Nothing new for the group until the next publish.
    assert!(consumer.fetch(10, Duration::ZERO).await.unwrap().is_empty());

    consumer.ack(d).await.unwrap();
    let s = q.stats().await.unwrap();
    assert_eq!(
        (s.depth, s.pending),
        (0, 0),
        "ack deletes, so XLEN is outstanding work"
    );
    cleanup(&q).await;
}

#[tokio::test]
async fn fetch_blocks_until_a_message_arrives() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let publisher = q.clone();
    let (got, _) = tokio::join!(consumer.fetch(1, Duration::from_millis(2_000)), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        publisher
            .publish(&OutgoingMessage::new("late", json!(null)))
            .await
            .unwrap();
    });
    assert_eq!(got.unwrap().len(), 1);
    // With nothing to read, a short block returns empty rather than an error.
    assert!(consumer
        .fetch(1, Duration::from_millis(20))
        .await
        .unwrap()
        .is_empty());
    cleanup(&q).await;
}

#[tokio::test]
async fn publish_batch_keeps_order_and_count() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let msgs: Vec<OutgoingMessage> = (0..1_000)
        .map(|n| OutgoingMessage::new("n", json!({ "n": n })).with_id(format!("event-{n}")))
        .collect();
    q.publish_batch(&msgs).await.unwrap();
    q.publish_batch(&[]).await.unwrap();
    assert_eq!(q.stats().await.unwrap().depth, 1_000);

    let got = consumer.fetch(1_000, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1_000);
    for (n, d) in got.iter().enumerate() {
        assert_eq!(d.message.id, format!("event-{n}"));
        assert_eq!(d.message.payload_json().unwrap(), json!({ "n": n }));
    }
    cleanup(&q).await;
}

#[tokio::test]
async fn typed_jobs_round_trip_and_kinds_are_checked() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let job = SendTemplate {
        vendor_id: uuid::Uuid::new_v4(),
        to: "919800000000".into(),
        template: "order_shipped ✓".into(),
    };
    let msg = OutgoingMessage::from_job(&job).unwrap();
    assert_eq!(msg.kind, "dispatch.send_template");
    q.publish(&msg).await.unwrap();
    // Same kind, payload that does not fit the type.
    q.publish(&OutgoingMessage::new(
        "dispatch.send_template",
        json!({"to": 5}),
    ))
    .await
    .unwrap();

    let got = consumer.fetch(10, Duration::ZERO).await.unwrap();
    assert_eq!(got[0].decode::<SendTemplate>().unwrap(), job);
    assert!(matches!(
        got[0].decode::<ChargeWallet>(),
        Err(QueueError::KindMismatch {
            expected: "billing.charge",
            ..
        })
    ));
    assert!(matches!(
        got[1].decode::<SendTemplate>(),
        Err(QueueError::Payload { .. })
    ));
    cleanup(&q).await;
}

#[tokio::test]
async fn malformed_entries_are_dead_lettered_not_returned() {
    let q = queue();
    let consumer = q.consumer("workers", "w1").await.unwrap();
    let mut conn = raw_conn().await;
    // A foreign writer forgot `kind`.
    let _: String = conn
        .xadd(&q.keys().stream, "*", &[("id", "x1"), ("payload", "{}")])
        .await
        .unwrap();
    q.publish(&OutgoingMessage::new("ok", json!(1)))
        .await
        .unwrap();

    let got = consumer.fetch(10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message.kind, "ok");

    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].message.is_none());
    assert!(
        dead[0].error.contains("`kind` is missing"),
        "{}",
        dead[0].error
    );
    let s = q.stats().await.unwrap();
    assert_eq!((s.depth, s.pending, s.dead), (1, 1, 1));
    cleanup(&q).await;
}
