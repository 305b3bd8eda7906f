use std::time::Duration;

use kloyst_config::{ConfigError, Env};

/// How the intake groups inserts.
#[derive(Clone, Debug)]
pub struct IntakeSettings {
    /// `WEBHOOK_INTAKE_WRITERS` (2): inserts in flight at once. While all are busy, arriving
    /// webhooks queue and go into the next insert together.
    pub writers: usize,
    /// `WEBHOOK_INTAKE_BATCH_ROWS` (500): rows per insert at most.
    pub batch_rows: usize,
    /// `WEBHOOK_INTAKE_BATCH_BYTES` (16 MiB): body bytes per insert at most.
    pub batch_bytes: usize,
    /// `WEBHOOK_INTAKE_QUEUE` (20000): webhooks waiting for a writer before requests wait too.
    pub queue: usize,
}

impl IntakeSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            writers: env.parse_or("WEBHOOK_INTAKE_WRITERS", 2)?,
            batch_rows: env.parse_or("WEBHOOK_INTAKE_BATCH_ROWS", 500)?,
            batch_bytes: env.parse_or("WEBHOOK_INTAKE_BATCH_BYTES", 16 * 1024 * 1024)?,
            queue: env.parse_or("WEBHOOK_INTAKE_QUEUE", 20_000)?,
        };
        for (var, value) in [
            ("WEBHOOK_INTAKE_WRITERS", settings.writers),
            ("WEBHOOK_INTAKE_BATCH_ROWS", settings.batch_rows),
            ("WEBHOOK_INTAKE_QUEUE", settings.queue),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    var,
                    reason: "must be at least 1".into(),
                });
            }
        }
        Ok(settings)
    }
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            writers: 2,
            batch_rows: 500,
            batch_bytes: 16 * 1024 * 1024,
            queue: 20_000,
        }
    }
}

/// How stored webhooks are processed and retried.
#[derive(Clone, Debug)]
pub struct ProcessorSettings {
    /// `WEBHOOK_PROCESS_CONCURRENCY` (4): rows processed at once by this copy; 0 makes it an
    /// intake-only copy (other copies process).
    pub concurrency: usize,
    /// `WEBHOOK_PROCESS_BATCH` (32): rows applied per transaction (one savepoint each).
    pub batch: usize,
    /// `WEBHOOK_PROCESS_BATCH_BYTES` (1 MiB): body bytes per transaction at most (a row larger
    /// than that is a batch of its own). Meta posts up to 1,000 statuses (~250 KB) at once: a
    /// batch of 32 such rows would lock tens of thousands of messages for seconds, while
    /// single-status rows (~500 bytes) still fill a batch by count.
    pub batch_bytes: usize,
    /// `WEBHOOK_PROCESS_LEASE` (60s): a claimed row not finished by then is due again (its
    /// processor died).
    pub lease: Duration,
    /// `WEBHOOK_MAX_ATTEMPTS` (8): failures before a row is dead-lettered.
    pub max_attempts: i32,
    /// `WEBHOOK_RETRY_BASE` (2s) doubling per attempt up to `WEBHOOK_RETRY_MAX` (1h).
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// `WEBHOOK_POLL_INTERVAL` (2s): the safety-net poll when no notification arrives.
    pub poll_interval: Duration,
}

impl ProcessorSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let settings = Self {
            concurrency: env.parse_or("WEBHOOK_PROCESS_CONCURRENCY", defaults.concurrency)?,
            batch: env.parse_or("WEBHOOK_PROCESS_BATCH", defaults.batch)?,
            batch_bytes: env.parse_or("WEBHOOK_PROCESS_BATCH_BYTES", defaults.batch_bytes)?,
            lease: env.duration_or("WEBHOOK_PROCESS_LEASE", defaults.lease)?,
            max_attempts: env.parse_or("WEBHOOK_MAX_ATTEMPTS", defaults.max_attempts)?,
            retry_base: env.duration_or("WEBHOOK_RETRY_BASE", defaults.retry_base)?,
            retry_max: env.duration_or("WEBHOOK_RETRY_MAX", defaults.retry_max)?,
            poll_interval: env.duration_or("WEBHOOK_POLL_INTERVAL", defaults.poll_interval)?,
        };
        if settings.max_attempts < 1 {
            return Err(ConfigError::Invalid {
                var: "WEBHOOK_MAX_ATTEMPTS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(settings)
    }
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            batch: 32,
            batch_bytes: 1024 * 1024,
            lease: Duration::from_secs(60),
            max_attempts: 8,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(3600),
            poll_interval: Duration::from_secs(2),
        }
    }
}
