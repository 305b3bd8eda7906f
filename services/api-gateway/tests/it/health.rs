use std::time::Duration;

use api_gateway::ApiGateway;
use kloyst_testkit::{eventually, RunningService, TcpProxy, TestStores};
use reqwest::StatusCode;
use serde_json::Value;

async fn get(url: &str) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn health_and_readiness_answer_at_root_and_under_v1() {
    let stores = TestStores::new().await;
    let api = RunningService::start::<ApiGateway>(&stores.env()).await;

    for path in ["/healthz", "/v1/healthz"] {
        let (status, body) = get(&api.url(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["service"], "api-gateway");
    }
    for path in ["/readyz", "/v1/readyz"] {
        let (status, body) = get(&api.url(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["checks"]["postgres"], "ok");
        assert_eq!(body["checks"]["redis"], "ok");
    }
    api.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_counts() {
    let stores = TestStores::new().await;
    let api = RunningService::start::<ApiGateway>(&stores.env()).await;
    get(&api.url("/v1/healthz")).await;
    let text = reqwest::get(api.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/v1/healthz""#), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

/// Readiness follows the stores: 503 naming the one that is down, 200 again once it is
/// back, without restarting the service.
#[tokio::test]
async fn readiness_follows_postgres_and_redis_without_restart() {
    let stores = TestStores::new().await;
    let pg_proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let redis_proxy = TcpProxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let env = stores.env_with_urls(
        &stores.database_url_via(pg_proxy.addr()),
        &TestStores::redis_url_via(redis_proxy.addr()),
    );
    let api = RunningService::start::<ApiGateway>(&env).await;
    let ready = api.url("/readyz");
    assert_eq!(get(&ready).await.0, StatusCode::OK);

    for (proxy, name) in [(&pg_proxy, "postgres"), (&redis_proxy, "redis")] {
        proxy.cut().await;
        let body = eventually(Duration::from_secs(10), || {
            let ready = ready.clone();
            async move {
                let (status, body) = get(&ready).await;
                (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
            }
        })
        .await
        .unwrap_or_else(|| panic!("readyz did not turn 503 with {name} down"));
        assert_eq!(body["code"], "dependency_unavailable");
        assert_eq!(body["checks"][name], "unavailable", "{body}");
        assert_eq!(body["detail"], format!("{name} unavailable"));

        proxy.restore();
        let back = eventually(Duration::from_secs(10), || {
            let ready = ready.clone();
            async move { (get(&ready).await.0 == StatusCode::OK).then_some(()) }
        })
        .await;
        assert!(
            back.is_some(),
            "readyz did not recover after {name} came back"
        );
    }
    api.stop().await.unwrap();
}
