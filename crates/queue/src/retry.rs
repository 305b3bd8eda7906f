//! Retry delays: exponential backoff with full jitter.
//!
//! Full jitter (a uniform delay between zero and the exponential ceiling) spreads the retries
//! of many messages that failed together (Meta down for a minute) instead of sending them back
//! in one wave at the same instant.

use std::time::Duration;

use rand::Rng;

/// The ceiling for `attempt` (1-based): `base · 2^(attempt-1)`, never above `max`.
pub fn backoff_ceiling(attempt: u32, base: Duration, max: Duration) -> Duration {
    // 2^31 · base overflows nothing that matters: `checked_mul` caps it at `max` anyway.
    let exponent = attempt.saturating_sub(1).min(31);
    base.checked_mul(1u32 << exponent)
        .map_or(max, |d| d.min(max))
}

/// A delay drawn uniformly from `[0, backoff_ceiling(attempt, base, max)]`, in whole ms
/// (the delayed set scores are ms).
pub fn backoff_delay<R: Rng + ?Sized>(
    attempt: u32,
    base: Duration,
    max: Duration,
    rng: &mut R,
) -> Duration {
    let ceiling_ms =
        u64::try_from(backoff_ceiling(attempt, base, max).as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.gen_range(0..=ceiling_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);

    #[test]
    fn ceiling_doubles_per_attempt() {
        assert_eq!(backoff_ceiling(1, BASE, MAX), Duration::from_secs(1));
        assert_eq!(backoff_ceiling(2, BASE, MAX), Duration::from_secs(2));
        assert_eq!(backoff_ceiling(3, BASE, MAX), Duration::from_secs(4));
        assert_eq!(backoff_ceiling(9, BASE, MAX), Duration::from_secs(256));
    }

    #[test]
    fn ceiling_is_capped_and_never_overflows() {
        assert_eq!(backoff_ceiling(10, BASE, MAX), MAX);
        assert_eq!(backoff_ceiling(64, BASE, MAX), MAX);
        assert_eq!(backoff_ceiling(u32::MAX, BASE, MAX), MAX);
        assert_eq!(backoff_ceiling(u32::MAX, Duration::MAX, MAX), MAX);
        // Attempt 0 (never written by us) is treated as the first.
        assert_eq!(backoff_ceiling(0, BASE, MAX), BASE);
        // A base above the max is clamped too.
        assert_eq!(backoff_ceiling(1, Duration::from_secs(600), MAX), MAX);
    }

    #[test]
    fn jitter_stays_within_the_ceiling_and_spreads() {
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..=12 {
            let ceiling = backoff_ceiling(attempt, BASE, MAX);
            let delays: Vec<Duration> = (0..500)
                .map(|_| backoff_delay(attempt, BASE, MAX, &mut rng))
                .collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            let lo = delays.iter().min().copied().unwrap_or_default();
            let hi = delays.iter().max().copied().unwrap_or_default();
            // Uniform over the whole range: 500 draws land in the bottom and top fifths.
            assert!(
                lo < ceiling / 5,
                "attempt {attempt}: min {lo:?} of {ceiling:?}"
            );
            assert!(
                hi > ceiling * 4 / 5,
                "attempt {attempt}: max {hi:?} of {ceiling:?}"
            );
        }
    }

    #[test]
    fn zero_base_means_immediate_retry() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            backoff_delay(3, Duration::ZERO, MAX, &mut rng),
            Duration::ZERO
        );
    }
}
