//! The limiter: one Lua script per check, so that concurrent requests on several
//! api-gateway copies see one bucket and one clock (Redis's).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_redis::redis::{RedisError, Script};
use kloyst_db::redis::{RedisPool, SharedConnection};

use crate::decision::Decision;
use crate::quota::Quota;

static GCRA: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("gcra.lua")));

/// A limiter sits in front of every request, so it must answer fast or not at all: past
/// this, the request goes on (fail open) rather than waiting for the pool's own timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// While Redis is down every request fails open; one warning per this interval is enough.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("no Redis connection for the rate limiter: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("the rate-limit script failed: {0}")]
    Redis(#[from] RedisError),
    #[error("Redis did not answer the rate limiter within {0:?}")]
    Timeout(Duration),
}

#[derive(Clone)]
pub struct RateLimiter {
    connection: SharedConnection,
    prefix: Arc<str>,
    timeout: Duration,
    last_warning: Arc<AtomicU64>,
}

impl RateLimiter {
    /// `key_prefix` is the deployment's `REDIS_KEY_PREFIX`; keys are
    /// `{prefix}:rl:{scope}:{key}`.
    pub fn new(pool: RedisPool, key_prefix: impl Into<String>) -> Self {
        Self {
            // A check runs in front of every request: no pool checkout (and its PING) each.
            connection: SharedConnection::new(pool),
            prefix: Arc::from(key_prefix.into()),
            timeout: DEFAULT_TIMEOUT,
            last_warning: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How long a check may take before it counts as Redis being unavailable.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Redis key of one bucket.
    pub fn bucket_key(&self, scope: &str, key: &str) -> String {
        format!("{}:rl:{scope}:{key}", self.prefix)
    }

    /// Counts one request against `quota` for `key` within `scope`. An error means Redis
    /// could not be asked; [`RateLimiter::check_or_allow`] turns that into "allowed".
    pub async fn check(
        &self,
        scope: &str,
        key: &str,
        quota: Quota,
    ) -> Result<Decision, RateLimitError> {
        let bucket = self.bucket_key(scope, key);
        let run = async {
            let mut conn = self.connection.get().await?;
            let reply: (i64, i64, i64) = GCRA
                .key(&bucket)
                .arg(quota.emission_interval_micros())
                .arg(quota.tolerance_micros())
                .invoke_async(&mut conn)
                .await?;
            Ok::<_, RateLimitError>(reply)
        };
        let reply = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| RateLimitError::Timeout(self.timeout))
            .and_then(|reply| reply)
            .inspect_err(|_| self.connection.discard())?;
        Ok(Decision::from_reply(quota, reply))
    }

    /// [`RateLimiter::check`], failing OPEN: when Redis cannot be asked the request is
    /// allowed, a warning is logged (at most every 10 s) and `rate_limit_errors_total` counts
    /// it. An outage of the limiter must not become an outage of the API; the price is that
    /// limits are not enforced while Redis is down, which everything else that needs Redis
    /// (queues, OTPs) will make loud anyway.
    pub async fn check_or_allow(&self, scope: &'static str, key: &str, quota: Quota) -> Decision {
        match self.check(scope, key, quota).await {
            Ok(decision) => decision,
            Err(error) => {
                self.record_failure(scope, &error);
                Decision::fail_open(quota)
            }
        }
    }

    /// The bookkeeping of a failed check that is being let through.
    pub(crate) fn record_failure(&self, scope: &'static str, error: &RateLimitError) {
        metrics::counter!("rate_limit_errors_total", "scope" => scope).increment(1);
        if self.should_warn() {
            tracing::warn!(
                rate_limit.scope = scope,
                error = %error,
                "rate limiter unavailable; allowing requests unchecked"
            );
        }
    }

    fn should_warn(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last_warning.load(Ordering::Relaxed);
        now.saturating_sub(last) >= WARN_EVERY.as_secs()
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
