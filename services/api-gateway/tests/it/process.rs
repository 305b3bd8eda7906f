//! The real binary: configuration errors and signals, as an operator sees them.

use std::time::Duration;

use kloyst_testkit::{free_port, signal, spawn_binary, wait_until_ready, TestStores};
use tokio::io::AsyncReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_api-gateway");

fn vars(stores: &TestStores, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("REDIS_URL", stores.redis_url.clone()),
        (
            "JWT_SECRET",
            "process-test-jwt-secret-0123456789abcdef".into(),
        ),
        ("DATA_ENCRYPTION_KEY", "ab".repeat(32)),
        ("RAZORPAY_KEY_ID", "rzp_test_process".into()),
        (
            "RAZORPAY_KEY_SECRET",
            "process-test-razorpay-key-secret".into(),
        ),
        ("API_PORT", port.to_string()),
    ]
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_with_one_line_naming_it() {
    let stores = TestStores::new().await;
    let mut vars = vars(&stores, free_port());
    vars.retain(|(k, _)| *k != "JWT_SECRET");
    let mut child = spawn_binary(BIN, &vars);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
    assert_eq!(
        stderr.trim(),
        "api-gateway: configuration error: JWT_SECRET is required but not set"
    );
}

#[tokio::test]
async fn a_malformed_value_is_named_and_the_secret_is_not_echoed() {
    let stores = TestStores::new().await;
    let mut vars = vars(&stores, free_port());
    vars.push(("DATA_ENCRYPTION_KEY", "secret-but-short".into()));
    let mut child = spawn_binary(BIN, &vars);
    let status = child.wait().await.unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("DATA_ENCRYPTION_KEY is invalid"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-but-short"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1);
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let stores = TestStores::new().await;
    let port = free_port();
    let mut child = spawn_binary(BIN, &vars(&stores, port));
    assert!(
        wait_until_ready(
            &format!("http://127.0.0.1:{port}/readyz"),
            Duration::from_secs(20)
        )
        .await,
        "api-gateway did not become ready"
    );
    signal(&child, "TERM").await;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
