//! The shared send rate against the real Redis: slots of every caller interleave without
//! overlap, and a throttle halves the rate once per cool-down.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use kloyst_dispatch::limiter::{SendRateLimiter, HORIZON};
use kloyst_testkit::TestStores;
use tokio::time::Instant;

#[tokio::test]
async fn two_callers_get_disjoint_slots_spaced_by_the_rate() {
    let stores = TestStores::new().await;
    // Two worker copies of one deployment.
    let a = SendRateLimiter::new(stores.redis.clone(), stores.redis_prefix.clone(), 50);
    let b = SendRateLimiter::new(stores.redis.clone(), stores.redis_prefix.clone(), 50);
    let first = a.acquire("pn-1", 10).await.unwrap();
    let second = b.acquire("pn-1", 10).await.unwrap();
    assert_eq!((first.count, second.count), (10, 10));
    // 50/s with 2% headroom: one slot every ~20.4 ms, never less.
    assert!(
        first.interval >= Duration::from_micros(20_000),
        "{:?}",
        first.interval
    );
    assert!(second.first_at >= first.slot(9) + first.interval - Duration::from_millis(2));
    // Slots are never reserved more than the horizon ahead: a greedy caller gets ~1 s worth.
    let greedy = a.acquire("pn-1", 1000).await.unwrap();
    assert!(greedy.count < 50, "{}", greedy.count);
    let none = b.acquire("pn-1", 10).await.unwrap();
    assert_eq!(none.count, 0, "the horizon is full");
    assert!(none.first_at > Instant::now() && none.first_at <= Instant::now() + HORIZON);
    // Another number has its own bucket; a rate of 0 never waits.
    let other = a.acquire("pn-2", 5).await.unwrap();
    assert!(other.first_at <= Instant::now() + Duration::from_millis(5));
    let uncapped = SendRateLimiter::new(stores.redis.clone(), stores.redis_prefix.clone(), 0);
    let all = uncapped.acquire("pn-1", 10_000).await.unwrap();
    assert_eq!((all.count, all.interval), (10_000, Duration::ZERO));
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_throttle_halves_the_shared_rate_once_per_cooldown_then_it_recovers() {
    let stores = TestStores::new().await;
    let limiter = SendRateLimiter::new(stores.redis.clone(), stores.redis_prefix.clone(), 100);
    let before = limiter.acquire("pn-1", 1).await.unwrap().interval;
    let halved = limiter.slow_down("pn-1").await.unwrap();
    assert!((halved - 0.5).abs() < 0.01, "{halved}");
    // The other calls of the same burst do not cut again.
    let again = limiter.slow_down("pn-1").await.unwrap();
    assert!((again - 0.5).abs() < 0.01, "{again}");
    let after = limiter.acquire("pn-1", 1).await.unwrap().interval;
    let ratio = after.as_secs_f64() / before.as_secs_f64();
    assert!((1.9..2.1).contains(&ratio), "interval ×{ratio}");
    // Recovery: +5% of the rate per second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let recovering = limiter.acquire("pn-1", 1).await.unwrap().interval;
    assert!(recovering < after, "{recovering:?} vs {after:?}");
    stores.cleanup_redis().await;
}
