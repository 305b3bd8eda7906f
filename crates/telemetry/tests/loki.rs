//! With `LOKI_URL` set, log lines are pushed to Loki's push API. Its own test binary: it
//! installs the process-wide subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use kloyst_config::sections::{LogFormat, TelemetrySettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test]
async fn log_lines_are_pushed_to_loki_when_loki_url_is_set() {
    let loki = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", loki.local_addr().unwrap());
    let settings = TelemetrySettings {
        log_format: LogFormat::Json,
        loki_url: Some(url.parse().unwrap()),
        environment: "test".into(),
    };
    let _guard = kloyst_telemetry::init_tracing("telemetry-test", &settings).unwrap();
    tracing::info!(campaign.id = "c-1", "a line for Loki");

    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(10), loki.accept())
        .await
        .expect("Loki was never called")
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the request head");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("post /loki/api/v1/push "), "{head}");
    assert!(
        head.contains("content-type: application/x-protobuf"),
        "{head}"
    );
    socket
        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
}
