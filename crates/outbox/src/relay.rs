//! Moves committed outbox events to Redis streams.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kloyst_db::redis::RedisPool;
use kloyst_db::PgPool;
use kloyst_queue::{OutgoingMessage, Queue, QueueConfig, QueueError};
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::store::{self, OutboxRow, CHANNEL};

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Events claimed and published per transaction.
    pub batch_size: i64,
    /// Safety net when a NOTIFY is missed (listener reconnecting, relay started late).
    pub poll_interval: Duration,
    /// Pause after a failed batch (Postgres or Redis down) before trying again.
    pub error_backoff: Duration,
    /// Published events are kept this long for audit and replay, then pruned.
    pub retention: Duration,
    /// How often gauges are refreshed and old events pruned.
    pub housekeeping_interval: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            poll_interval: Duration::from_secs(1),
            error_backoff: Duration::from_millis(500),
            retention: Duration::from_secs(7 * 24 * 3600),
            housekeeping_interval: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Queue(#[from] QueueError),
}

/// Publishes committed outbox events. Any number of relays may run: each batch locks its
/// rows with `FOR UPDATE SKIP LOCKED`, publishes them, marks them and commits. If the relay
/// dies before the commit, the locks go with its connection and another batch publishes
/// the same events again: delivery is at least once.
pub struct Relay {
    pg: PgPool,
    redis: RedisPool,
    queue_config: QueueConfig,
    settings: RelaySettings,
    queues: tokio::sync::Mutex<HashMap<String, Queue>>,
}

impl Relay {
    pub fn new(
        pg: PgPool,
        redis: RedisPool,
        queue_config: QueueConfig,
        settings: RelaySettings,
    ) -> Self {
        Self {
            pg,
            redis,
            queue_config,
            settings,
            queues: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// One batch: claim, publish, mark, commit. Returns how many events it moved.
    pub async fn relay_batch(&self) -> Result<usize, RelayError> {
        let started = Instant::now();
        let mut tx = self.pg.begin().await?;
        let rows = store::claim(&mut tx, self.settings.batch_size).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        self.publish(&rows).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        store::mark_published(&mut tx, &ids).await?;
        tx.commit().await?;
        metrics::counter!("outbox_events_published_total").increment(rows.len() as u64);
        metrics::histogram!("outbox_relay_batch_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(events = rows.len(), "outbox batch relayed");
        Ok(rows.len())
    }

    /// Publishes claimed rows to their streams, one pipelined round trip per stream.
    /// The event id becomes the message id, so a re-publish is recognisable downstream.
    pub async fn publish(&self, rows: &[OutboxRow]) -> Result<(), RelayError> {
        let mut by_stream: Vec<(&str, Vec<OutgoingMessage>)> = Vec::new();
        for row in rows {
            let message = OutgoingMessage {
                id: row.event_id.to_string(),
                kind: row.kind.clone(),
                payload: row.payload.clone(),
                correlation_id: row.correlation_id.clone(),
            };
            match by_stream
                .iter_mut()
                .find(|(stream, _)| *stream == row.stream)
            {
                Some((_, batch)) => batch.push(message),
                None => by_stream.push((row.stream.as_str(), vec![message])),
            }
        }
        for (stream, messages) in by_stream {
            let queue = self.queue(stream).await;
            queue.publish_batch(&messages).await?;
        }
        Ok(())
    }

    async fn queue(&self, stream: &str) -> Queue {
        let mut queues = self.queues.lock().await;
        queues
            .entry(stream.to_owned())
            .or_insert_with(|| Queue::new(self.redis.clone(), self.queue_config.clone(), stream))
            .clone()
    }

    /// Relays until `shutdown`: drains the backlog, then sleeps until a NOTIFY or the poll
    /// interval. A batch in progress is finished (or rolled back) before returning.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut listener = None;
        let mut last_housekeeping: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if last_housekeeping
                .is_none_or(|at| at.elapsed() >= self.settings.housekeeping_interval)
            {
                self.housekeeping().await;
                last_housekeeping = Some(Instant::now());
            }
            match self.relay_batch().await {
                Ok(n) if n as i64 >= self.settings.batch_size => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "outbox batch failed; will retry");
                    metrics::counter!("outbox_relay_errors_total").increment(1);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(self.settings.error_backoff) => continue,
                    }
                }
            }
            if listener.is_none() {
                listener = self.listen().await;
            }
            let wait_for_notify = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                received = wait_for_notify => {
                    if let Err(error) = received {
                        tracing::warn!(%error, "outbox listener lost; polling until it is back");
                        listener = None;
                    }
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pg).await.ok()?;
        listener.listen(CHANNEL).await.ok()?;
        Some(listener)
    }

    async fn housekeeping(&self) {
        let Ok(mut conn) = self.pg.acquire().await else {
            return;
        };
        match store::backlog(&mut conn).await {
            Ok((count, age)) => {
                metrics::gauge!("outbox_backlog_events").set(count as f64);
                metrics::gauge!("outbox_oldest_unpublished_age_seconds").set(age);
            }
            Err(error) => tracing::warn!(%error, "could not measure the outbox backlog"),
        }
        match store::prune_published(&mut conn, self.settings.retention, 10_000).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned published outbox events past retention"),
            Err(error) => tracing::warn!(%error, "could not prune the outbox"),
        }
    }
}
