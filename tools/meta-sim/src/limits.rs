//! Meta's send limits: per-number throughput (130429) and the per-recipient pair limit (131056).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A token bucket holding at most one second of sends.
#[derive(Debug)]
pub struct Throughput {
    tokens: f64,
    last: Instant,
}

impl Default for Throughput {
    fn default() -> Self {
        Self {
            tokens: f64::MAX,
            last: Instant::now(),
        }
    }
}

impl Throughput {
    /// Takes one send at `rate_per_second` (0 = no cap); false when over the cap.
    pub fn try_take(&mut self, rate_per_second: u32, now: Instant) -> bool {
        if rate_per_second == 0 {
            return true;
        }
        let rate = f64::from(rate_per_second);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The last accepted send per recipient, pruned so a load test cannot grow it without end.
#[derive(Debug, Default)]
pub struct PairLimit {
    last_send: HashMap<String, Instant>,
}

const PRUNE_ABOVE: usize = 100_000;

impl PairLimit {
    /// Records a send to `wa_id` unless one was accepted less than `min_gap_seconds` ago.
    pub fn try_take(&mut self, wa_id: &str, min_gap_seconds: f64, now: Instant) -> bool {
        if min_gap_seconds <= 0.0 {
            return true;
        }
        let gap = Duration::from_secs_f64(min_gap_seconds);
        if let Some(last) = self.last_send.get(wa_id) {
            if now.saturating_duration_since(*last) < gap {
                return false;
            }
        }
        if self.last_send.len() >= PRUNE_ABOVE {
            self.last_send
                .retain(|_, last| now.saturating_duration_since(*last) < gap);
        }
        self.last_send.insert(wa_id.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_allows_one_second_then_refills() {
        let mut bucket = Throughput::default();
        let t0 = Instant::now();
        let accepted = (0..15).filter(|_| bucket.try_take(10, t0)).count();
        assert_eq!(accepted, 10);
        assert!(bucket.try_take(10, t0 + Duration::from_millis(150)));
        assert!(bucket.try_take(0, t0), "0 means no cap");
    }

    #[test]
    fn pair_limit_spaces_sends_to_one_recipient() {
        let mut pairs = PairLimit::default();
        let t0 = Instant::now();
        assert!(pairs.try_take("911", 6.0, t0));
        assert!(!pairs.try_take("911", 6.0, t0 + Duration::from_secs(5)));
        assert!(pairs.try_take("912", 6.0, t0));
        assert!(pairs.try_take("911", 6.0, t0 + Duration::from_secs(6)));
        assert!(pairs.try_take("911", 0.0, t0), "0 means off");
    }
}
