//! The dispatch knobs (`CAMPAIGN_*`, see `.env.example`) plus the Meta values it needs.

use std::time::Duration;

use kloyst_config::{sections::MetaApiSettings, ConfigError, Env};

/// How campaigns are split, paced, retried and watched.
#[derive(Clone, Debug)]
pub struct DispatchSettings {
    /// `CAMPAIGN_RANGE_SIZE` (2000): a campaign gets one more parallel stripe per this many
    /// recipients, up to [`Self::parallel_ranges`].
    pub range_size: i32,
    /// `CAMPAIGN_PARALLEL_RANGES` (4): stripes in flight per campaign, so many campaigns share
    /// the workers fairly.
    pub parallel_ranges: i32,
    /// `CAMPAIGN_BATCH` (500): recipients claimed by one statement (capped at one second of
    /// sends at the per-number rate).
    pub batch_size: i64,
    /// `CAMPAIGN_SLICE` (5s): a range job claims no new batch after this; what is left goes
    /// to a continuation job.
    pub slice: Duration,
    /// `CAMPAIGN_SEND_CONCURRENCY` (32): Meta calls in flight per range job.
    pub send_concurrency: usize,
    /// `CAMPAIGN_MAX_ATTEMPTS` (5): transient failures before a recipient is FAILED
    /// (retryable).
    pub max_attempts: i16,
    /// `CAMPAIGN_RETRY_BASE` (2s): first transient backoff, doubling per attempt.
    pub retry_base: Duration,
    /// `CAMPAIGN_SENDING_LEASE` (2m): a recipient SENDING for longer belongs to a dead worker.
    pub sending_lease: Duration,
    /// `CAMPAIGN_RECONCILE_INTERVAL` (15s): how often the reconciler and watchdog run.
    pub reconcile_interval: Duration,
    /// `CAMPAIGN_WATCHDOG` (10m): a running campaign without progress for this long is
    /// re-planned.
    pub watchdog: Duration,
    /// `CAMPAIGN_WATCHDOG_FAIL_AFTER` (1h, more than `CAMPAIGN_WATCHDOG`): a running
    /// campaign without progress for this long, although re-planned, is FAILED
    /// (WATCHDOG_TIMEOUT) and its hold released ([`kloyst_campaigns::fail_stalled`]).
    pub watchdog_fail_after: Duration,
    /// `CAMPAIGN_SCHEDULE_GRACE` (15m): a SCHEDULED campaign found due later than this
    /// after its time is not started but FAILED (SCHEDULE_MISSED) and reported.
    pub schedule_grace: Duration,
    /// `META_SEND_RATE` (80): messages per second per phone number across every worker;
    /// 0 = no cap (benchmarks).
    pub send_rate: u32,
    /// `META_PHONE_NUMBER_ID`: the sending number of campaigns without one of their own.
    pub default_phone_number_id: String,
}

impl DispatchSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let meta = MetaApiSettings::from_env(env)?;
        Self::from_env_with(env, &meta)
    }

    /// As [`Self::from_env`] with Meta's settings already read.
    pub fn from_env_with(env: &Env, meta: &MetaApiSettings) -> Result<Self, ConfigError> {
        let at_least_one = |var: &'static str, value: i64| {
            if value < 1 {
                Err(ConfigError::Invalid {
                    var,
                    reason: "must be at least 1".to_owned(),
                })
            } else {
                Ok(value)
            }
        };
        let range_size = env.parse_or("CAMPAIGN_RANGE_SIZE", 2000_i32)?;
        at_least_one("CAMPAIGN_RANGE_SIZE", range_size.into())?;
        let parallel_ranges = env.parse_or("CAMPAIGN_PARALLEL_RANGES", 4_i32)?;
        at_least_one("CAMPAIGN_PARALLEL_RANGES", parallel_ranges.into())?;
        let batch_size = env.parse_or("CAMPAIGN_BATCH", 500_i64)?;
        at_least_one("CAMPAIGN_BATCH", batch_size)?;
        let send_concurrency = env.parse_or("CAMPAIGN_SEND_CONCURRENCY", 32_usize)?;
        at_least_one(
            "CAMPAIGN_SEND_CONCURRENCY",
            i64::try_from(send_concurrency).unwrap_or(i64::MAX),
        )?;
        let max_attempts = env.parse_or("CAMPAIGN_MAX_ATTEMPTS", 5_i16)?;
        at_least_one("CAMPAIGN_MAX_ATTEMPTS", max_attempts.into())?;
        let watchdog = env.duration_or("CAMPAIGN_WATCHDOG", Duration::from_secs(600))?;
        let watchdog_fail_after =
            env.duration_or("CAMPAIGN_WATCHDOG_FAIL_AFTER", Duration::from_secs(3600))?;
        if watchdog_fail_after <= watchdog {
            // Failing before the re-plan had its chance would fail campaigns a re-plan saves.
            return Err(ConfigError::Invalid {
                var: "CAMPAIGN_WATCHDOG_FAIL_AFTER",
                reason: "must be longer than CAMPAIGN_WATCHDOG".to_owned(),
            });
        }
        Ok(Self {
            range_size,
            parallel_ranges,
            batch_size,
            slice: env.duration_or("CAMPAIGN_SLICE", Duration::from_secs(5))?,
            send_concurrency,
            max_attempts,
            retry_base: env.duration_or("CAMPAIGN_RETRY_BASE", Duration::from_secs(2))?,
            sending_lease: env.duration_or("CAMPAIGN_SENDING_LEASE", Duration::from_secs(120))?,
            reconcile_interval: env
                .duration_or("CAMPAIGN_RECONCILE_INTERVAL", Duration::from_secs(15))?,
            watchdog,
            watchdog_fail_after,
            schedule_grace: env
                .duration_or("CAMPAIGN_SCHEDULE_GRACE", Duration::from_secs(15 * 60))?,
            send_rate: meta.send_rate,
            default_phone_number_id: meta.phone_number_id.clone(),
        })
    }

    /// Recipients claimed at once: a batch, but no more than about a second of sends, so a
    /// claimed batch is sent (and recorded) well within the job's time budget.
    pub fn claim_size(&self) -> i64 {
        if self.send_rate == 0 {
            self.batch_size
        } else {
            self.batch_size.min(i64::from(self.send_rate)).max(1)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_pairs([
            ("META_ACCESS_TOKEN", "token"),
            ("META_WABA_ID", "1"),
            ("META_PHONE_NUMBER_ID", "2"),
        ])
    }

    #[test]
    fn defaults_and_claim_size() {
        let s = DispatchSettings::from_env(&env()).unwrap();
        assert_eq!(s.range_size, 2000);
        assert_eq!(s.parallel_ranges, 4);
        assert_eq!(s.batch_size, 500);
        assert_eq!(s.slice, Duration::from_secs(5));
        assert_eq!(s.sending_lease, Duration::from_secs(120));
        assert_eq!(s.send_rate, 80);
        assert_eq!(s.claim_size(), 80, "one second of sends at 80/s");
        let uncapped = DispatchSettings::from_env(&env().with("META_SEND_RATE", "0")).unwrap();
        assert_eq!(uncapped.claim_size(), 500);
        assert!(DispatchSettings::from_env(&env().with("CAMPAIGN_BATCH", "0")).is_err());
    }

    #[test]
    fn the_watchdog_fails_only_after_its_replan_had_time() {
        let s = DispatchSettings::from_env(&env()).unwrap();
        assert_eq!(s.watchdog, Duration::from_secs(600));
        assert_eq!(s.watchdog_fail_after, Duration::from_secs(3600));
        let short = env().with("CAMPAIGN_WATCHDOG", "30s");
        let s = DispatchSettings::from_env(&short.with("CAMPAIGN_WATCHDOG_FAIL_AFTER", "2m"));
        assert_eq!(s.unwrap().watchdog_fail_after, Duration::from_secs(120));
        for fail_after in ["10m", "5m"] {
            let refused =
                DispatchSettings::from_env(&env().with("CAMPAIGN_WATCHDOG_FAIL_AFTER", fail_after));
            assert!(
                matches!(refused, Err(ConfigError::Invalid { var, .. }) if var == "CAMPAIGN_WATCHDOG_FAIL_AFTER"),
                "{fail_after}"
            );
        }
    }
}
