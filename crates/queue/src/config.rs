//! Queue settings. One struct for producers and consumers: a producer only reads `prefix`.

use std::time::Duration;

/// How a queue behaves. `Default` gives production values; tests shrink the durations.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Every key lives under this prefix, so environments (and tests) never collide.
    pub prefix: String,
    /// How long a delivered entry may stay unacknowledged before another consumer may take it
    /// over. Handlers must finish well within it, or the entry is handled twice.
    pub visibility_timeout: Duration,
    /// Attempts (handler runs, or deliveries for a message that crashes its consumer) before a
    /// message goes to the dead-letter stream.
    pub max_attempts: u32,
    /// First retry waits up to this long; each further attempt doubles the ceiling.
    pub backoff_base: Duration,
    /// Ceiling of the retry delay, whatever the attempt.
    pub backoff_max: Duration,
    /// How long one `XREADGROUP` blocks in the runner. Keep it below the pool's response
    /// timeout (redis-rs cuts replies off at 500 ms by default; `kloyst_db::redis::connect` allows 5 s).
    pub fetch_block: Duration,
    /// Deliveries the runner handles at once.
    pub concurrency: usize,
    /// How often the runner re-claims abandoned entries, promotes due retries and records gauges.
    pub maintenance_interval: Duration,
    /// On shutdown, how long the runner waits for in-flight handlers before abandoning them
    /// (abandoned entries stay pending and are re-claimed by another consumer).
    pub shutdown_grace: Duration,
    /// How long a handled message id is remembered so a duplicate delivery is skipped.
    /// `None` turns the check off for handlers that are idempotent on their own. Memory grows
    /// with throughput × ttl, so keep it to the window in which duplicates really arrive
    /// (relay re-publish after a crash, re-claim after the visibility timeout).
    pub dedupe_ttl: Option<Duration>,
    /// Most delayed entries one `promote_due` call moves (bounds the time the script holds Redis).
    pub promote_batch: usize,
    /// Pause after a Redis error before the runner tries again.
    pub error_backoff: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            prefix: "kloyst".to_owned(),
            visibility_timeout: Duration::from_secs(30),
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            fetch_block: Duration::from_millis(400),
            concurrency: 16,
            maintenance_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            dedupe_ttl: Some(Duration::from_secs(3600)),
            promote_batch: 100,
            error_backoff: Duration::from_millis(500),
        }
    }
}

impl QueueConfig {
    /// Defaults with another key prefix.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }
}
