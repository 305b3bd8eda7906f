//! The applier's knobs (`STATUS_*`, see `.env.example`).

use std::time::Duration;

use kloyst_config::{ConfigError, Env};

/// How statuses are applied, parked and dead-lettered.
#[derive(Clone, Debug)]
pub struct ApplierSettings {
    /// `STATUS_APPLY_BATCH` (2000): statuses claimed, applied and charged in one transaction.
    pub batch: i64,
    /// `STATUS_PARK_TIMEOUT` (10m): a status whose message log has not appeared this long
    /// after it was received is dead-lettered ("no message with this wamid").
    pub park_timeout: Duration,
    /// `STATUS_APPLY_POLL` (1s): how often an idle applier looks for queued statuses (parked
    /// ones coming due, replayed dead letters); new statuses are applied inline.
    pub poll: Duration,
}

impl Default for ApplierSettings {
    fn default() -> Self {
        Self {
            batch: 2000,
            park_timeout: Duration::from_secs(600),
            poll: Duration::from_secs(1),
        }
    }
}

impl ApplierSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let batch = env.parse_or("STATUS_APPLY_BATCH", defaults.batch)?;
        if !(1..=50_000).contains(&batch) {
            return Err(ConfigError::Invalid {
                var: "STATUS_APPLY_BATCH",
                reason: "must be between 1 and 50000".to_owned(),
            });
        }
        let poll = env.duration_or("STATUS_APPLY_POLL", defaults.poll)?;
        if poll.is_zero() {
            return Err(ConfigError::Invalid {
                var: "STATUS_APPLY_POLL",
                reason: "must be more than 0".to_owned(),
            });
        }
        Ok(Self {
            batch,
            park_timeout: env.duration_or("STATUS_PARK_TIMEOUT", defaults.park_timeout)?,
            poll,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;

    #[test]
    fn defaults_overrides_and_refusals() {
        let env = Env::from_pairs([("UNRELATED", "1")]);
        let defaults = ApplierSettings::from_env(&env).unwrap();
        assert_eq!(
            (defaults.batch, defaults.park_timeout, defaults.poll),
            (2000, Duration::from_secs(600), Duration::from_secs(1))
        );
        let set = ApplierSettings::from_env(
            &env.clone()
                .with("STATUS_APPLY_BATCH", "500")
                .with("STATUS_PARK_TIMEOUT", "30m")
                .with("STATUS_APPLY_POLL", "250ms"),
        )
        .unwrap();
        assert_eq!(
            (set.batch, set.park_timeout, set.poll),
            (500, Duration::from_secs(1800), Duration::from_millis(250))
        );
        for (var, value) in [
            ("STATUS_APPLY_BATCH", "0"),
            ("STATUS_APPLY_BATCH", "many"),
            ("STATUS_APPLY_POLL", "0s"),
        ] {
            let error = ApplierSettings::from_env(&env.clone().with(var, value)).unwrap_err();
            assert!(error.to_string().contains(var), "{error}");
        }
    }
}
