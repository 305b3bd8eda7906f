use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use kloyst_http::extract::{Json, Path};
use kloyst_http::middleware::{stack, Limits};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateThing {
    name: String,
    count: u32,
}

async fn create(Json(body): Json<CreateThing>) -> axum::Json<Value> {
    axum::Json(json!({ "name": body.name, "count": body.count }))
}

async fn show(Path(id): Path<Uuid>) -> String {
    id.to_string()
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

#[allow(clippy::panic)]
async fn boom() -> &'static str {
    panic!("handler bug")
}

struct Server {
    base: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn spawn() -> Server {
    let router = Router::new()
        .route("/things", post(create))
        .route("/things/{id}", get(show))
        .route("/slow", get(slow))
        .route("/boom", get(boom));
    let app = stack(
        router,
        "test",
        Limits {
            body_bytes: 1024,
            request_timeout: Duration::from_millis(300),
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(kloyst_http::server::serve(listener, app, shutdown.clone()));
    Server {
        base,
        client: reqwest::Client::new(),
        shutdown,
    }
}

async fn problem(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "status {status}");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn valid_request_passes_and_carries_a_request_id() {
    let server = spawn().await;
    let response = server
        .client
        .post(format!("{}/things", server.base))
        .json(&json!({ "name": "a", "count": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(Uuid::parse_str(&request_id).unwrap().get_version_num(), 4);

    // A caller's own request id is kept (it correlates across our services).
    let response = server
        .client
        .get(format!("{}/things/{}", server.base, Uuid::nil()))
        .header("x-request-id", "caller-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "caller-chosen-id");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let server = spawn().await;
    let response = server
        .client
        .post(format!("{}/things", server.base))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "malformed_json");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let server = spawn().await;
    let response = server
        .client
        .post(format!("{}/things", server.base))
        .header("content-type", "text/plain")
        .body(r#"{"name":"a","count":1}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn unknown_field_is_422_naming_it() {
    let server = spawn().await;
    let response = server
        .client
        .post(format!("{}/things", server.base))
        .json(&json!({ "name": "a", "count": 1, "vendor_id": "someone-else" }))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "vendor_id");
    assert_eq!(body["errors"][0]["code"], "unknown_field");
}

#[tokio::test]
async fn wrong_type_is_422_naming_the_field() {
    let server = spawn().await;
    let response = server
        .client
        .post(format!("{}/things", server.base))
        .json(&json!({ "name": "a", "count": "three" }))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "count");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let server = spawn().await;
    let response = server
        .client
        .post(format!("{}/things", server.base))
        .json(&json!({ "name": "x".repeat(4096), "count": 1 }))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
}

#[tokio::test]
async fn bad_path_uuid_is_400() {
    let server = spawn().await;
    let response = server
        .client
        .get(format!("{}/things/not-a-uuid", server.base))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_path");
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_problems() {
    let server = spawn().await;
    let response = server
        .client
        .get(format!("{}/nope", server.base))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");

    let response = server
        .client
        .delete(format!("{}/things", server.base))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn timeout_is_a_problem_not_a_hang() {
    let server = spawn().await;
    let response = server
        .client
        .get(format!("{}/slow", server.base))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(body["code"], "request_timeout");
}

#[tokio::test]
async fn a_panicking_handler_is_an_opaque_500_and_the_server_lives_on() {
    let server = spawn().await;
    let response = server
        .client
        .get(format!("{}/boom", server.base))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(response).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.to_string().contains("handler bug"));
    let response = server
        .client
        .get(format!("{}/things/{}", server.base, Uuid::nil()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
