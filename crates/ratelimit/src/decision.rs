//! What the limiter answers for one request.

use std::time::Duration;

use crate::quota::Quota;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The quota's burst size.
    pub limit: u32,
    /// Requests that would still be allowed right now, after this one.
    pub remaining: u32,
    /// Until the bucket is full again (all `limit` requests available).
    pub reset_after: Duration,
    /// Until one more request would be allowed; `Some` exactly when refused.
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// Builds the decision from the script's reply (see `gcra.lua`).
    pub(crate) fn from_reply(quota: Quota, reply: (i64, i64, i64)) -> Self {
        let (allowed, reset_after_us, retry_after_us) = reply;
        let reset_after_us = u64::try_from(reset_after_us).unwrap_or(0);
        let retry_after_us = u64::try_from(retry_after_us).unwrap_or(0);
        let allowed = allowed == 1;
        // What is left of the tolerance, in whole emission intervals.
        let headroom = quota.tolerance_micros().saturating_sub(reset_after_us);
        let remaining = if allowed {
            headroom / quota.emission_interval_micros()
        } else {
            0
        };
        Self {
            allowed,
            limit: quota.limit(),
            remaining: u32::try_from(remaining)
                .unwrap_or(u32::MAX)
                .min(quota.limit()),
            reset_after: Duration::from_micros(reset_after_us),
            // A refusal always has something to wait for; at least 1 µs keeps it `Some(>0)`.
            retry_after: (!allowed).then(|| Duration::from_micros(retry_after_us.max(1))),
        }
    }

    /// The answer when the limiter cannot reach Redis: let the request through.
    pub fn fail_open(quota: Quota) -> Self {
        Self {
            allowed: true,
            limit: quota.limit(),
            remaining: quota.limit(),
            reset_after: Duration::ZERO,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000;

    fn five_per_second() -> Quota {
        Quota::parse("5/s").unwrap()
    }

    #[test]
    fn remaining_counts_down_through_a_burst() {
        let quota = five_per_second();
        // After the k-th request of a burst the TAT is k × 200 ms ahead of now.
        for k in 1..=5_i64 {
            let decision = Decision::from_reply(quota, (1, k * 200 * MS, 0));
            assert!(decision.allowed);
            assert_eq!(decision.remaining, 5 - k as u32, "after request {k}");
            assert_eq!(decision.reset_after, Duration::from_millis(k as u64 * 200));
            assert_eq!(decision.retry_after, None);
        }
    }

    #[test]
    fn a_refusal_has_nothing_left_and_a_wait() {
        let decision = Decision::from_reply(five_per_second(), (0, 1_000 * MS, 200 * MS));
        assert!(!decision.allowed);
        assert_eq!(decision.limit, 5);
        assert_eq!(decision.remaining, 0);
        assert_eq!(decision.retry_after, Some(Duration::from_millis(200)));
        assert_eq!(decision.reset_after, Duration::from_secs(1));
    }

    #[test]
    fn partial_refill_rounds_down() {
        // 150 ms after a full burst: 850 ms of debt, 150 ms of headroom, not one full interval.
        let decision = Decision::from_reply(five_per_second(), (1, 1_050 * MS, 0));
        assert_eq!(decision.remaining, 0);
        let decision = Decision::from_reply(five_per_second(), (1, 600 * MS, 0));
        assert_eq!(decision.remaining, 2);
    }

    #[test]
    fn odd_replies_do_not_panic() {
        let decision = Decision::from_reply(five_per_second(), (0, -5, -5));
        assert_eq!(decision.remaining, 0);
        assert_eq!(decision.retry_after, Some(Duration::from_micros(1)));
        let decision = Decision::from_reply(five_per_second(), (1, -5, 0));
        assert_eq!(decision.remaining, 5);
    }
}
