//! Redis unreachable: the limiter errs, the layer lets requests through.

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use kloyst_ratelimit::{RateLimitError, RateLimitLayer, RateLimiter};
use kloyst_testkit::TcpProxy;
use reqwest::StatusCode;

use crate::support::{header, pool, quota, redis_addr, unique_prefix, Server};

/// A port nothing listens on: bound, then released.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("redis://{addr}")
}

#[tokio::test]
async fn a_closed_port_is_an_error_and_check_or_allow_allows() {
    let limiter = RateLimiter::new(pool(&closed_port_url().await), unique_prefix());
    let one = quota("1/h");

    let started = Instant::now();
    let error = limiter.check("api", "v", one).await.unwrap_err();
    assert!(
        matches!(error, RateLimitError::Pool(_) | RateLimitError::Timeout(_)),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "fails fast");

    for _ in 0..3 {
        let decision = limiter.check_or_allow("api", "v", one).await;
        assert!(decision.allowed);
        assert_eq!(decision.retry_after, None);
    }
}

#[tokio::test]
async fn a_cut_connection_fails_open_over_http_and_limits_again_once_restored() {
    let proxy = TcpProxy::start(redis_addr().await).await;
    let limiter = RateLimiter::new(pool(&format!("redis://{}", proxy.addr())), unique_prefix());
    let one = quota("1/h");
    let router = Router::new()
        .route("/x", get(|| async { "ok" }))
        .route_layer(RateLimitLayer::new(limiter, "api", one, |_| {
            Some("vendor".to_owned())
        }));
    let server = Server::start(router).await;

    let first = server.get("/x").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "ratelimit-remaining").as_deref(), Some("0"));
    let second = server.get("/x").send().await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);

    proxy.cut().await;
    for _ in 0..3 {
        let response = server.get("/x").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "fails open");
        // Nothing true to say about the budget, so nothing is said.
        assert_eq!(header(&response, "ratelimit-remaining"), None);
    }

    proxy.restore();
    let back = kloyst_testkit::eventually(Duration::from_secs(5), || async {
        let response = server.get("/x").send().await.ok()?;
        (response.status() == StatusCode::TOO_MANY_REQUESTS).then_some(())
    })
    .await;
    assert!(
        back.is_some(),
        "the same bucket refuses again once Redis is back"
    );
}
