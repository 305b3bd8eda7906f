//! The layer over real HTTP, inside the services' middleware stack.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use kloyst_http::middleware::{stack, Limits};
use kloyst_ratelimit::{by_client_ip, RateLimitLayer, TrustedProxies};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::support::{header, quota, Server, TestLimiter};

#[derive(Deserialize)]
struct Problem {
    status: u16,
    code: String,
}

/// `/limited` keyed by the `x-vendor` header (absent: not limited), `/open` not layered.
async fn vendor_server(t: &TestLimiter, limit: &str) -> Server {
    let layer = RateLimitLayer::new(t.limiter.clone(), "api", quota(limit), |parts| {
        parts
            .headers
            .get("x-vendor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let router = Router::new()
        .route("/limited", get(|| async { "ok" }))
        .route_layer(layer)
        .route("/open", get(|| async { "open" }));
    let app = stack(
        router,
        "test",
        Limits {
            body_bytes: 1024,
            request_timeout: Duration::from_secs(5),
        },
    );
    Server::start(app).await
}

#[tokio::test]
async fn allowed_answers_carry_the_ratelimit_headers() {
    let t = TestLimiter::new();
    let server = vendor_server(&t, "3/min").await;
    for remaining in ["2", "1", "0"] {
        let response = server
            .get("/limited")
            .header("x-vendor", "a")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&response, "ratelimit-remaining").as_deref(),
            Some(remaining)
        );
        assert_eq!(
            header(&response, "ratelimit-policy").as_deref(),
            Some("3;w=60")
        );
        let reset: u64 = header(&response, "ratelimit-reset")
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&reset), "reset {reset}");
        assert_eq!(response.text().await.unwrap(), "ok");
    }
}

#[tokio::test]
async fn refused_answers_are_429_problems_with_retry_after() {
    let t = TestLimiter::new();
    let server = vendor_server(&t, "3/min").await; // T = 20 s
    for _ in 0..3 {
        let response = server
            .get("/limited")
            .header("x-vendor", "a")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = server
        .get("/limited")
        .header("x-vendor", "a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/problem+json")
    );
    let retry_after: u64 = header(&response, "retry-after").unwrap().parse().unwrap();
    assert!(
        (19..=20).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(
        header(&response, "ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert_eq!(
        header(&response, "ratelimit-policy").as_deref(),
        Some("3;w=60")
    );
    let reset: u64 = header(&response, "ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&reset), "reset {reset}");
    // The stack's request id still goes out on a refusal.
    assert!(header(&response, "x-request-id").is_some());
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.status, 429);
    assert_eq!(problem.code, "rate_limited");

    // Another vendor is untouched.
    let other = server
        .get("/limited")
        .header("x-vendor", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn no_key_means_no_limit() {
    let t = TestLimiter::new();
    let server = vendor_server(&t, "1/h").await;
    for _ in 0..5 {
        let response = server.get("/limited").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit"), None);
    }
    // Routes outside the route_layer are not limited, and unmatched paths cost nothing.
    for _ in 0..3 {
        let open = server
            .get("/open")
            .header("x-vendor", "a")
            .send()
            .await
            .unwrap();
        assert_eq!(open.status(), StatusCode::OK);
        assert_eq!(header(&open, "ratelimit-limit"), None);
        let missing = server
            .get("/nope")
            .header("x-vendor", "a")
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
    assert!(t.keys().await.is_empty());
}

#[tokio::test]
async fn per_ip_limits_follow_the_forwarded_client_behind_a_trusted_proxy() {
    let t = TestLimiter::new();
    let layer = RateLimitLayer::new(
        t.limiter.clone(),
        "auth",
        quota("2/min"),
        by_client_ip(TrustedProxies::loopback()),
    );
    // `layer` rather than `route_layer`: both work.
    let router = Router::new()
        .route("/v1/auth/login", get(|| async { "ok" }))
        .layer(layer);
    let server = Server::start(router).await;
    let login = |ip: &'static str| {
        server
            .get("/v1/auth/login")
            .header("x-forwarded-for", ip)
            .send()
    };

    assert_eq!(login("203.0.113.1").await.unwrap().status(), StatusCode::OK);
    assert_eq!(login("203.0.113.1").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        login("203.0.113.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // The test client is on loopback, which is trusted here: each forwarded client has
    // its own budget.
    assert_eq!(login("203.0.113.2").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        t.keys().await,
        vec![
            format!("{}:rl:auth:203.0.113.1", t.prefix),
            format!("{}:rl:auth:203.0.113.2", t.prefix),
        ]
    );
}
