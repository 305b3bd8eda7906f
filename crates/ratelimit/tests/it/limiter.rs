//! GCRA against the real Redis.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::support::{quota, TestLimiter};

#[tokio::test]
async fn a_burst_of_limit_then_refusal_then_one_more_after_t() {
    let t = TestLimiter::new();
    let five = quota("5/s"); // T = 200 ms
    for expected_remaining in (0..5).rev() {
        let decision = t.limiter.check("api", "v1", five).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.limit, 5);
        assert_eq!(decision.remaining, expected_remaining);
        assert_eq!(decision.retry_after, None);
    }

    let refused = t.limiter.check("api", "v1", five).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    let retry = refused.retry_after.expect("a refusal says when to retry");
    // T, less the time the burst itself took; and the bucket is full one period - T later.
    assert!(retry <= Duration::from_millis(200), "{retry:?}");
    assert!(retry > Duration::ZERO, "{retry:?}");
    assert_eq!(refused.reset_after - retry, Duration::from_millis(800));

    // Refusals write nothing: asking again does not push the wait further out.
    let again = t.limiter.check("api", "v1", five).await.unwrap();
    assert!(!again.allowed);
    assert!(again.retry_after.unwrap() <= retry);

    tokio::time::sleep(retry + Duration::from_millis(5)).await;
    let allowed = t.limiter.check("api", "v1", five).await.unwrap();
    assert!(allowed.allowed, "one more after waiting T: {allowed:?}");
    assert_eq!(allowed.remaining, 0);
    let refused = t.limiter.check("api", "v1", five).await.unwrap();
    assert!(!refused.allowed, "and only one");
}

#[tokio::test]
async fn the_key_lives_as_long_as_the_tolerance() {
    let t = TestLimiter::new();
    t.limiter
        .check("auth", "203.0.113.7", quota("20/min"))
        .await
        .unwrap();
    let keys = t.keys().await;
    assert_eq!(keys, vec![format!("{}:rl:auth:203.0.113.7", t.prefix)]);
    let ttl = t.pttl(&keys[0]).await;
    assert!(ttl > 59_000 && ttl <= 60_000, "PTTL {ttl}");
}

#[tokio::test]
async fn keys_and_scopes_are_separate_buckets() {
    let t = TestLimiter::new();
    let two = quota("2/min");
    for _ in 0..2 {
        assert!(t.limiter.check("auth", "a", two).await.unwrap().allowed);
    }
    assert!(!t.limiter.check("auth", "a", two).await.unwrap().allowed);

    let other_key = t.limiter.check("auth", "b", two).await.unwrap();
    assert!(other_key.allowed);
    assert_eq!(other_key.remaining, 1);

    let other_scope = t.limiter.check("api", "a", two).await.unwrap();
    assert!(other_scope.allowed);
    assert_eq!(other_scope.remaining, 1);

    // Another prefix (another deployment or test) shares nothing either.
    let neighbour = TestLimiter::new();
    assert!(
        neighbour
            .limiter
            .check("auth", "a", two)
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn the_bucket_holds_time_so_a_changed_quota_carries_the_debt_over() {
    // A config change between two requests: 3 of 3/min leave 60 s of debt, which is a full
    // bucket under 6/min too; the wait is then the new T (10 s), not the old one (20 s).
    let t = TestLimiter::new();
    for _ in 0..3 {
        assert!(
            t.limiter
                .check("api", "v", quota("3/min"))
                .await
                .unwrap()
                .allowed
        );
    }
    let bigger = t.limiter.check("api", "v", quota("6/min")).await.unwrap();
    assert!(!bigger.allowed);
    let retry = bigger.retry_after.unwrap();
    assert!(
        retry <= Duration::from_secs(10) && retry > Duration::from_secs(9),
        "{retry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_on_one_key_allow_exactly_the_limit() {
    let t = TestLimiter::new();
    let limiter = Arc::new(t.limiter.clone());
    let ten = quota("10/min"); // T = 6 s: nothing refills while the test runs
    let mut tasks = JoinSet::new();
    for _ in 0..200 {
        let limiter = limiter.clone();
        tasks.spawn(async move { limiter.check("api", "hot", ten).await });
    }
    let mut allowed = 0;
    let mut refused = 0;
    while let Some(result) = tasks.join_next().await {
        let decision = result.unwrap().expect("Redis answers every check");
        if decision.allowed {
            allowed += 1;
        } else {
            refused += 1;
        }
    }
    assert_eq!(allowed, 10);
    assert_eq!(refused, 190);
}
