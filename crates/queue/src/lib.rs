//! A job queue over Redis Streams with consumer groups.
//!
//! Keys live under a configurable prefix: the work stream `{prefix}:stream:{name}`, the delayed
//! retries `{prefix}:delayed:{name}` (sorted set scored by due time), the dead letters
//! `{prefix}:dead:{name}`, and dedupe marks `{prefix}:done:{group}:{message_id}`.
//!
//! Delivery is at least once. An entry is acknowledged *and deleted* once handled, so the
//! stream's length is the outstanding work (and one stream serves one consumer group). An
//! entry whose consumer died stays pending and is re-claimed by another after the visibility
//! timeout; one that keeps killing its consumers is dead-lettered. Failed jobs are retried with
//! exponential backoff and full jitter, then dead-lettered after `max_attempts`. Handlers that
//! are not idempotent are protected by a per-message "done" mark.
//!
//! ```no_run
//! # async fn demo(pool: deadpool_redis::Pool) -> Result<(), kloyst_queue::QueueError> {
//! use kloyst_queue::{run_consumer, HandlerError, OutgoingMessage, Queue, QueueConfig};
//! let queue = Queue::new(pool, QueueConfig::default(), "dispatch");
//! queue.publish(&OutgoingMessage::new("ping", serde_json::json!({}))).await?;
//! let consumer = queue.consumer("workers", "worker-1").await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! run_consumer(consumer, |_delivery| async { Ok::<(), HandlerError>(()) }, shutdown).await;
//! # Ok(()) }
//! ```

mod config;
mod consumer;
mod error;
mod handler;
mod keys;
mod message;
mod queue;
mod reclaim;
mod retry;
mod runner;
mod scripts;
mod settle;
mod stats;
mod wire;

pub use config::QueueConfig;
pub use consumer::{Consumer, RetryOutcome};
pub use error::QueueError;
pub use handler::{Handler, HandlerError};
pub use keys::{done_key, Keys};
pub use message::{DeadLetter, Delivery, IncomingMessage, Job, OutgoingMessage};
pub use queue::{OnceClaim, Queue};
pub use retry::{backoff_ceiling, backoff_delay};
pub use runner::{run_consumer, RunReport};
pub use stats::QueueStats;

/// Stream names shared by producers (domain crates, through the outbox) and consumers.
pub mod streams {
    /// Background jobs run by the worker-pool (mail, template submission, dispatch, …).
    pub const JOBS: &str = "jobs";
}

/// The redis crate and pool type this library speaks, so callers need no direct dependency.
pub use deadpool_redis::{redis, Pool};
