//! A quota: `limit` requests per `period`, in bursts of up to `limit`.
//!
//! Written in configuration as `<limit>/<period>`: `20/min`, `600/min`, `5/s`, `100/h`,
//! `1000/d`, or with a count before the unit, `50/10s`, `300/15min`.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use kloyst_config::{ConfigError, Env};

/// Shortest and longest period accepted, in whole seconds: the `RateLimit-Policy` window is
/// written in seconds, and beyond 30 days a limit is no longer "rate" limiting.
const MIN_PERIOD: Duration = Duration::from_secs(1);
const MAX_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    limit: NonZeroU32,
    period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("expected <limit>/<period> such as 20/min, 5/s, 100/h")]
    Syntax,
    #[error("the limit must be a whole number from 1 to {max}", max = u32::MAX)]
    Limit,
    #[error("unknown period unit {0:?}; use s, min, h or d (optionally with a count: 10s, 15min)")]
    Unit(String),
    #[error("the period must be a whole number of seconds between 1 s and 30 days")]
    Period,
}

impl Quota {
    pub fn new(limit: NonZeroU32, period: Duration) -> Result<Self, QuotaError> {
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&period) || period.subsec_nanos() != 0 {
            return Err(QuotaError::Period);
        }
        Ok(Self { limit, period })
    }

    pub const fn per_second(limit: NonZeroU32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(1),
        }
    }

    pub const fn per_minute(limit: NonZeroU32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(60),
        }
    }

    pub const fn per_hour(limit: NonZeroU32) -> Self {
        Self {
            limit,
            period: Duration::from_secs(3600),
        }
    }

    pub fn parse(input: &str) -> Result<Self, QuotaError> {
        let (limit, period) = input.trim().split_once('/').ok_or(QuotaError::Syntax)?;
        let limit = limit
            .trim()
            .parse::<NonZeroU32>()
            .map_err(|_| QuotaError::Limit)?;
        Self::new(limit, parse_period(period.trim())?)
    }

    /// `var` parsed as a quota, or `default` when unset; a bad value is a start-up error
    /// naming `var`.
    pub fn from_env(env: &Env, var: &'static str, default: Quota) -> Result<Self, ConfigError> {
        env.parse_or(var, default)
    }

    pub fn limit(&self) -> u32 {
        self.limit.get()
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// GCRA's emission interval T = period / limit, rounded UP to a whole microsecond (the
    /// limiter's clock unit) and never zero. Rounding up keeps every figure an integer, so
    /// the Lua script's arithmetic is exact; the cost is a rate slower than asked by under
    /// one microsecond per request.
    pub fn emission_interval_micros(&self) -> u64 {
        let period = micros(self.period);
        period.div_ceil(u64::from(self.limit.get())).max(1)
    }

    /// GCRA's tolerance: how far ahead of now the theoretical arrival time may run, which is
    /// what lets `limit` requests through at once. Defined as `limit × T` (equal to the
    /// period but for T's rounding) so that exactly `limit` requests fit in a burst.
    pub fn tolerance_micros(&self) -> u64 {
        self.emission_interval_micros() * u64::from(self.limit.get())
    }

    /// The window for `RateLimit-Policy: <limit>;w=<seconds>`.
    pub fn window_secs(&self) -> u64 {
        ceil_secs(self.period)
    }
}

impl FromStr for Quota {
    type Err = QuotaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The canonical spelling, which [`Quota::parse`] reads back.
impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Periods are whole seconds (see `Quota::new`).
        match self.period.as_secs() {
            86_400 => write!(f, "{}/d", self.limit),
            3_600 => write!(f, "{}/h", self.limit),
            60 => write!(f, "{}/min", self.limit),
            secs => write!(f, "{}/{secs}s", self.limit),
        }
    }
}

/// `s`, `min`, `h`, `d` (and their long forms), optionally preceded by a count: `10s`.
fn parse_period(raw: &str) -> Result<Duration, QuotaError> {
    let unit_at = raw
        .find(|c: char| !c.is_ascii_digit())
        .ok_or(QuotaError::Syntax)?;
    let (count, unit) = raw.split_at(unit_at);
    let count: u64 = if count.is_empty() {
        1
    } else {
        count.parse().map_err(|_| QuotaError::Period)?
    };
    let unit_secs: u64 = match unit.trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hr" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        other => return Err(QuotaError::Unit(other.to_owned())),
    };
    count
        .checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or(QuotaError::Period)
}

pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Header values are whole seconds; rounding up means a client that waits that long is
/// never refused again for the same reason.
pub(crate) fn ceil_secs(duration: Duration) -> u64 {
    let secs = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quota {
        Quota::parse(s).unwrap()
    }

    #[test]
    fn reads_the_usual_spellings() {
        assert_eq!(q("20/min").limit(), 20);
        assert_eq!(q("20/min").period(), Duration::from_secs(60));
        assert_eq!(q("600/m").period(), Duration::from_secs(60));
        assert_eq!(q("5/s").period(), Duration::from_secs(1));
        assert_eq!(q("100/h").period(), Duration::from_secs(3600));
        assert_eq!(q("1000/day").period(), Duration::from_secs(86_400));
        assert_eq!(q(" 50 / 10s ").period(), Duration::from_secs(10));
        assert_eq!(q("300/15min").period(), Duration::from_secs(900));
    }

    #[test]
    fn refuses_bad_spellings() {
        assert_eq!(Quota::parse("20"), Err(QuotaError::Syntax));
        assert_eq!(Quota::parse("20/"), Err(QuotaError::Syntax));
        assert_eq!(Quota::parse("20/10"), Err(QuotaError::Syntax));
        assert_eq!(Quota::parse("0/min"), Err(QuotaError::Limit));
        assert_eq!(Quota::parse("-1/min"), Err(QuotaError::Limit));
        assert_eq!(Quota::parse("lots/min"), Err(QuotaError::Limit));
        assert_eq!(Quota::parse("99999999999/min"), Err(QuotaError::Limit));
        assert_eq!(
            Quota::parse("20/fortnight"),
            Err(QuotaError::Unit("fortnight".into()))
        );
        assert_eq!(Quota::parse("20/0s"), Err(QuotaError::Period));
        assert_eq!(Quota::parse("20/31d"), Err(QuotaError::Period));
        assert_eq!(
            Quota::parse("20/99999999999999999999s"),
            Err(QuotaError::Period)
        );
    }

    #[test]
    fn display_round_trips() {
        for s in ["20/min", "5/s", "100/h", "7/d", "50/10s"] {
            let quota = q(s);
            assert_eq!(Quota::parse(&quota.to_string()), Ok(quota), "{s}");
        }
        assert_eq!(q("5/1s").to_string(), "5/1s");
        assert_eq!(q("9/60s").to_string(), "9/min");
        let one = NonZeroU32::MIN;
        assert_eq!(
            Quota::new(one, Duration::from_millis(1500)),
            Err(QuotaError::Period)
        );
        assert_eq!(
            Quota::new(one, Duration::from_secs(2)).map(|q| q.to_string()),
            Ok("1/2s".to_owned())
        );
    }

    #[test]
    fn gcra_figures_are_whole_microseconds() {
        let five = q("5/s");
        assert_eq!(five.emission_interval_micros(), 200_000);
        assert_eq!(five.tolerance_micros(), 1_000_000);
        let api = q("6000/min");
        assert_eq!(api.emission_interval_micros(), 10_000);
        assert_eq!(api.tolerance_micros(), 60_000_000);
        // 1 s / 3 is not whole: T rounds up, and the tolerance follows it.
        let third = q("3/s");
        assert_eq!(third.emission_interval_micros(), 333_334);
        assert_eq!(third.tolerance_micros(), 1_000_002);
        // More requests than microseconds: T never drops to zero.
        let huge = Quota::per_second(NonZeroU32::MAX);
        assert_eq!(huge.emission_interval_micros(), 1);
    }

    #[test]
    fn windows_round_up_to_whole_seconds() {
        assert_eq!(q("5/s").window_secs(), 1);
        assert_eq!(q("20/min").window_secs(), 60);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }

    #[test]
    fn from_env_names_the_variable() {
        let default = q("20/min");
        let env = Env::from_pairs([("GOOD", "5/s"), ("BAD", "5 per second")]);
        assert_eq!(Quota::from_env(&env, "GOOD", default), Ok(q("5/s")));
        assert_eq!(Quota::from_env(&env, "UNSET", default), Ok(default));
        let err = Quota::from_env(&env, "BAD", default).unwrap_err();
        assert!(err.to_string().contains("BAD is invalid"), "{err}");
    }
}
