//! webhook-worker against the real Postgres and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod crash;
mod intake;
mod payments;
mod simulator;
mod support;

use kloyst_config::Env;
use kloyst_http::service::Service;
use kloyst_testkit::{RunningService, TestStores};
use webhook_worker::WebhookWorker;

#[tokio::test]
async fn health_and_readiness_answer_at_root_and_under_webhook() {
    let stores = TestStores::new().await;
    let worker = RunningService::start::<WebhookWorker>(&stores.env()).await;
    for path in ["/healthz", "/webhook/healthz", "/readyz", "/webhook/readyz"] {
        let response = reqwest::get(worker.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["service"], "webhook-worker");
    }
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn an_unknown_webhook_route_is_a_problem_not_a_crash() {
    let stores = TestStores::new().await;
    let worker = RunningService::start::<WebhookWorker>(&stores.env()).await;
    let response = reqwest::Client::new()
        .post(worker.url("/webhook/unknown"))
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        reqwest::get(worker.url("/healthz")).await.unwrap().status(),
        200
    );
}

#[test]
fn webhook_secrets_are_required() {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://postgres@127.0.0.1/x"),
        ("REDIS_URL", "redis://127.0.0.1"),
        ("META_VERIFY_TOKEN", "verify-token"),
        ("RAZORPAY_WEBHOOK_SECRET", "razorpay-secret"),
    ]);
    let error = WebhookWorker::from_env(&env).unwrap_err().to_string();
    assert_eq!(
        error,
        "configuration error: META_APP_SECRET is required but not set"
    );
    let env = env.with("META_APP_SECRET", "meta-app-secret-0123");
    assert!(WebhookWorker::from_env(&env).is_ok());
}

#[test]
fn a_pool_too_small_for_the_writers_and_processors_is_refused_at_startup() {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://postgres@127.0.0.1/x"),
        ("REDIS_URL", "redis://127.0.0.1"),
        ("META_APP_SECRET", "meta-app-secret-0123"),
        ("META_VERIFY_TOKEN", "verify-token"),
        ("RAZORPAY_WEBHOOK_SECRET", "razorpay-secret"),
        ("DATABASE_MAX_CONNECTIONS", "6"),
    ]);
    let error = WebhookWorker::from_env(&env).unwrap_err().to_string();
    assert!(error.contains("DATABASE_MAX_CONNECTIONS"), "{error}");
    assert!(error.contains("at least 7"), "{error}");
    assert!(WebhookWorker::from_env(&env.with("WEBHOOK_PROCESS_CONCURRENCY", "0")).is_ok());
}
