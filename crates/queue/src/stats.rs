//! Queue numbers for dashboards and alerts: how much work waits, and for how long.

use std::time::Duration;

use crate::error::QueueError;
use crate::queue::Queue;
use crate::scripts;
use crate::wire;

/// A snapshot of one queue, taken atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Entries in the stream: not yet delivered plus delivered-but-unacknowledged (acked
    /// entries are deleted, so this is the outstanding work).
    pub depth: u64,
    /// Delivered but not yet acknowledged, over all groups.
    pub pending: u64,
    /// Age of the oldest entry in the stream (pending or waiting), from its id's timestamp;
    /// zero when the stream is empty. A growing age means consumers are stuck or too few.
    pub oldest_age: Duration,
    /// Retries waiting for their time.
    pub delayed: u64,
    /// Entries in the dead-letter stream (someone should look at them).
    pub dead: u64,
}

impl Queue {
    /// One consistent snapshot (a script: one round trip, Redis' clock for the age).
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let keys = self.keys();
        let mut conn = self.conn().await?;
        let (depth, pending, oldest, delayed, dead, secs, micros): (
            u64,
            u64,
            String,
            u64,
            u64,
            u64,
            u64,
        ) = scripts::STATS
            .key(&keys.stream)
            .key(&keys.delayed)
            .key(&keys.dead)
            .invoke_async(&mut conn)
            .await?;
        let now_ms = secs.saturating_mul(1000).saturating_add(micros / 1000);
        let oldest_age = wire::entry_id_ms(&oldest)
            .map(|ms| Duration::from_millis(now_ms.saturating_sub(ms)))
            .unwrap_or_default();
        Ok(QueueStats {
            depth,
            pending,
            oldest_age,
            delayed,
            dead,
        })
    }

    /// Takes a snapshot and sets the gauges `queue_depth`, `queue_pending`,
    /// `queue_oldest_age_seconds`, `queue_delayed` and `queue_dead_letters`, labelled `stream`.
    pub async fn record_metrics(&self) -> Result<QueueStats, QueueError> {
        let stats = self.stats().await?;
        let stream = self.name().to_owned();
        // Gauges are f64; queue sizes stay far below 2^53.
        metrics::gauge!("queue_depth", "stream" => stream.clone()).set(stats.depth as f64);
        metrics::gauge!("queue_pending", "stream" => stream.clone()).set(stats.pending as f64);
        metrics::gauge!("queue_oldest_age_seconds", "stream" => stream.clone())
            .set(stats.oldest_age.as_secs_f64());
        metrics::gauge!("queue_delayed", "stream" => stream.clone()).set(stats.delayed as f64);
        metrics::gauge!("queue_dead_letters", "stream" => stream).set(stats.dead as f64);
        Ok(stats)
    }
}
