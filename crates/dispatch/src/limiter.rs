//! The per-number send rate, shared by every worker copy through Redis.
//!
//! A GCRA without burst allowance that *reserves* slots: [`SendRateLimiter::acquire`] hands
//! out up to `n` consecutive slots, each `interval` after the previous one, and the caller
//! starts each send at its slot. Slots never overlap between callers, so in every one-second
//! window at most `rate` sends start, whatever the number of workers. Meta measures at its end,
//! after network jitter, so the slots are spaced for [`RATE_HEADROOM`] of the configured rate.
//!
//! When Meta throttles anyway (130429, 80007), [`SendRateLimiter::slow_down`] halves a shared
//! factor (at most once per [`CUT_COOLDOWN`]); it recovers linearly by [`RECOVERY_PER_SECOND`].

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use deadpool_redis::redis::{RedisError, Script};
use kloyst_db::redis::RedisPool;
use tokio::time::Instant;

static SEND_RATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("send_rate.lua")));
static SLOW_DOWN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("slow_down.lua")));

/// Share of the configured rate the slots are spaced for: 2% of slack absorbs the jitter
/// between our clock and Meta's (a send that leaves late and the next one on time).
pub const RATE_HEADROOM: f64 = 0.98;
/// Slots are never reserved further ahead than this: a job that stops early wastes little.
pub const HORIZON: Duration = Duration::from_secs(1);
/// The slow-down factor never goes below this share of the rate.
pub const MIN_FACTOR: f64 = 0.05;
/// Recovery of the factor per second once throttling stops (0.5 → 1 in 10 s).
pub const RECOVERY_PER_SECOND: f64 = 0.05;
/// A burst of throttled calls halves the rate once, not once per call.
pub const CUT_COOLDOWN: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    #[error("no Redis connection for the send rate: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("the send-rate script failed: {0}")]
    Redis(#[from] RedisError),
    /// A batch stopped because the limiter could not be asked (see the log for why).
    #[error("the send-rate limiter is unavailable")]
    Unavailable,
}

/// Slots handed out by [`SendRateLimiter::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Slots granted (0: none free within the horizon; retry at `first_at`).
    pub count: usize,
    /// When the first slot starts (or, with none granted, when to ask again).
    pub first_at: Instant,
    /// Spacing of the slots.
    pub interval: Duration,
}

impl Grant {
    /// When slot `i` (0-based) of this grant starts.
    pub fn slot(&self, i: usize) -> Instant {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        self.first_at + self.interval.saturating_mul(i)
    }
}

/// Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct SendRateLimiter {
    pool: RedisPool,
    prefix: Arc<str>,
    rate: u32,
}

impl SendRateLimiter {
    /// `rate` messages per second per number (0 = no cap); keys live under `key_prefix`
    /// (the deployment's `REDIS_KEY_PREFIX`).
    pub fn new(pool: RedisPool, key_prefix: impl Into<String>, rate: u32) -> Self {
        Self {
            pool,
            prefix: Arc::from(key_prefix.into()),
            rate,
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    fn keys(&self, phone_number_id: &str) -> (String, String) {
        (
            format!("{}:dispatch:rate:{phone_number_id}", self.prefix),
            format!("{}:dispatch:factor:{phone_number_id}", self.prefix),
        )
    }

    /// Reserves up to `wanted` send slots for the number.
    pub async fn acquire(
        &self,
        phone_number_id: &str,
        wanted: usize,
    ) -> Result<Grant, LimiterError> {
        let now = Instant::now();
        if self.rate == 0 || wanted == 0 {
            return Ok(Grant {
                count: wanted,
                first_at: now,
                interval: Duration::ZERO,
            });
        }
        let base_interval_us = (1_000_000.0 / (f64::from(self.rate) * RATE_HEADROOM)).ceil();
        let (tat_key, factor_key) = self.keys(phone_number_id);
        let mut conn = self.pool.get().await?;
        let reply: (i64, i64, i64, i64, i64) = SEND_RATE
            .key(&tat_key)
            .key(&factor_key)
            .arg(base_interval_us)
            .arg(wanted)
            .arg(micros(HORIZON))
            .arg(RECOVERY_PER_SECOND)
            .invoke_async(&mut conn)
            .await?;
        let (granted, first_in_us, interval_us, factor_millionths, retry_in_us) = reply;
        // Offsets are from Redis's "now", a little before ours after the reply: mapped to
        // this instant, slots are late by at most the round trip, never early.
        let now = Instant::now();
        metrics::gauge!("campaign_send_rate_factor", "phone_number_id" => phone_number_id.to_owned())
            .set(factor_millionths as f64 / 1_000_000.0);
        let interval = from_micros(interval_us);
        Ok(if granted > 0 {
            Grant {
                count: usize::try_from(granted).unwrap_or(0),
                first_at: now + from_micros(first_in_us),
                interval,
            }
        } else {
            Grant {
                count: 0,
                first_at: now + from_micros(retry_in_us),
                interval,
            }
        })
    }

    /// Meta throttled the number: halve its shared rate for a while. Returns the factor now
    /// in force (1.0 = full rate).
    pub async fn slow_down(&self, phone_number_id: &str) -> Result<f64, LimiterError> {
        if self.rate == 0 {
            return Ok(1.0);
        }
        let (_, factor_key) = self.keys(phone_number_id);
        let mut conn = self.pool.get().await?;
        let factor_millionths: i64 = SLOW_DOWN
            .key(&factor_key)
            .arg(MIN_FACTOR)
            .arg(RECOVERY_PER_SECOND)
            .arg(micros(CUT_COOLDOWN))
            .invoke_async(&mut conn)
            .await?;
        let factor = factor_millionths as f64 / 1_000_000.0;
        metrics::gauge!("campaign_send_rate_factor", "phone_number_id" => phone_number_id.to_owned())
            .set(factor);
        Ok(factor)
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}
