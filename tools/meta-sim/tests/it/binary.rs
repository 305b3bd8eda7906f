//! The binary starts with env defaults plus the META_* variables, and stops on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test]
async fn the_binary_serves_with_defaults_and_stops_on_sigterm() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_meta-sim"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("META_ACCESS_TOKEN", TOKEN)
        .env("META_APP_SECRET", APP_SECRET)
        .env("META_WABA_ID", WABA_ID)
        .env("META_PHONE_NUMBER_ID", PHONE_NUMBER_ID)
        .env("SIM_PORT", port.to_string())
        // Razorpay: the key id from the env, the secret left at its development default.
        .env("RAZORPAY_KEY_ID", "rzp_test_binary")
        .env("SIM_PAYMENT_WEBHOOK_URL", "off")
        // No .env in the test's working directory is read for other values.
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let http = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/_sim/health");
    let started = Instant::now();
    // An external process: polling until it listens is the only way to know.
    loop {
        if let Ok(response) = http.get(&health).send().await {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "meta-sim did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, behaviour) = {
        let r = http
            .get(format!("http://127.0.0.1:{port}/_sim/behaviour"))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(behaviour["rate_per_second"], 80);
    let orders = format!("http://127.0.0.1:{port}/v1/orders");
    let order = serde_json::json!({"amount": 100, "currency": "INR"});
    for (secret, expected) in [("dev-razorpay-key-secret", 200), ("wrong", 401)] {
        let response = http
            .post(&orders)
            .basic_auth("rzp_test_binary", Some(secret))
            .json(&order)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "key secret {secret}");
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let waited = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "meta-sim did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
