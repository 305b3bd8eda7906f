//! kill -9 of the webhook-worker binary while the simulator is posting: every webhook the
//! simulator saw acknowledged (HTTP 200) is in the inbox, and all of them get processed.

use std::collections::HashSet;
use std::time::Duration;

use kloyst_testkit::{eventually, free_port, signal, spawn_binary, wait_until_ready, TestStores};
use meta_sim::Behaviour;
use serde_json::{json, Value};

use crate::support::{Sim, APP_SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_webhook-worker");
const DELIVERIES: usize = 3000;
const STATUSES_PER_POST: usize = 2;

fn vars(stores: &TestStores, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("REDIS_URL", stores.redis_url.clone()),
        ("REDIS_KEY_PREFIX", stores.redis_prefix.clone()),
        ("WEBHOOK_PORT", port.to_string()),
        ("META_APP_SECRET", APP_SECRET.to_owned()),
        ("META_VERIFY_TOKEN", "test-verify-token".to_owned()),
        (
            "RAZORPAY_WEBHOOK_SECRET",
            "test-razorpay-webhook-secret".to_owned(),
        ),
        ("WEBHOOK_POLL_INTERVAL", "100ms".to_owned()),
        // A row claimed by the killed process is due again soon after.
        ("WEBHOOK_PROCESS_LEASE", "2s".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
}

async fn sim_webhooks(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/_sim/webhooks?limit=100000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn kill_9_while_meta_posts_loses_no_acknowledged_webhook() {
    let stores = TestStores::new().await;
    let port = free_port();
    let worker_url = format!("http://127.0.0.1:{port}");
    let worker = spawn_binary(BIN, &vars(&stores, port));
    assert!(wait_until_ready(&format!("{worker_url}/readyz"), Duration::from_secs(30)).await);

    // Meta, posting to the worker with quick retries of anything not acknowledged.
    let sim_handle = Sim::start(
        format!("{worker_url}/webhook/meta"),
        Behaviour {
            webhook_concurrency: 16,
            webhook_retry_base_ms: 50,
            webhook_retry_max_ms: 500,
            ..Behaviour::default()
        },
    )
    .await;
    let sim = sim_handle.base.clone();
    let http = reqwest::Client::new();
    let flood = http
        .post(format!("{sim}/_sim/flood"))
        .json(&json!({"count": DELIVERIES * STATUSES_PER_POST, "statuses_per_post": STATUSES_PER_POST}))
        .send()
        .await
        .unwrap();
    assert!(
        flood.status().is_success(),
        "{}",
        flood.text().await.unwrap()
    );

    // Mid-stream: some acknowledged, most not yet.
    let acked_before = eventually(Duration::from_secs(30), || async {
        let acked = sim_webhooks(&http, &sim).await["summary"]["acked"]
            .as_u64()
            .unwrap_or(0);
        (acked >= 300).then_some(acked)
    })
    .await
    .expect("the simulator's webhooks are being acknowledged");
    signal(&worker, "KILL").await;
    let at_kill = sim_webhooks(&http, &sim).await["summary"].clone();
    assert!(
        at_kill["pending"].as_u64().unwrap() > 0,
        "killed mid-stream: {at_kill}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _restarted = spawn_binary(BIN, &vars(&stores, port));
    assert!(wait_until_ready(&format!("{worker_url}/readyz"), Duration::from_secs(30)).await);

    // Meta retried until every delivery got its 200.
    let report = eventually(Duration::from_secs(90), || async {
        let report = sim_webhooks(&http, &sim).await;
        (report["summary"]["pending"] == 0 && report["summary"]["acked"] == DELIVERIES)
            .then_some(report)
    })
    .await
    .expect("every delivery acknowledged after the restart");

    // Every acknowledged body is in the inbox, byte for byte (its SHA-256).
    let acked: HashSet<String> = report["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["acked"] == true)
        .map(|d| d["body_sha256"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(acked.len(), DELIVERIES);
    let stored: HashSet<String> = sqlx::query_scalar::<_, Vec<u8>>(
        "SELECT body_sha256 FROM webhook_inbox WHERE source = 'META'",
    )
    .fetch_all(&stores.pg)
    .await
    .unwrap()
    .into_iter()
    .map(|sha| kloyst_core::page::encode_bytes(&sha))
    .collect();
    let missing: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );

    // And all of it is processed: rows the killed process had claimed included.
    let processed = eventually(Duration::from_secs(60), || async {
        let (unprocessed, statuses): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM webhook_inbox WHERE state <> 'PROCESSED'), \
                    (SELECT count(*) FROM message_status_events)",
        )
        .fetch_one(&stores.pg)
        .await
        .unwrap();
        (unprocessed == 0 && statuses == (DELIVERIES * STATUSES_PER_POST) as i64).then_some(())
    })
    .await;
    assert!(processed.is_some(), "every stored webhook processed");
    assert!(acked_before >= 300);
    sim_handle.stop().await;
}
