//! Resident memory of each service binary when idle: started from target/release against a
//! fresh database, left to settle, then VmRSS read from /proc three times.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

use crate::{median, stores};

const SERVICES: &[(&str, &str, u16)] = &[
    ("api-gateway", "API_PORT", 23000),
    ("webhook-worker", "WEBHOOK_PORT", 23002),
    ("worker-pool", "METRICS_PORT", 23101),
    ("outbox-relay", "METRICS_PORT", 23102),
];

pub(crate) fn rss_kib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("no VmRSS value")?
        .parse()?;
    Ok(kib)
}

pub async fn run(settle_secs: u64) -> Result<()> {
    let stores = stores::fresh("kloyst_bench_idle").await?;
    let dir = std::env::current_exe()?
        .parent()
        .map(std::path::Path::to_path_buf)
        .context("binary directory")?;
    let mut children = Vec::new();
    for (name, port_var, port) in SERVICES {
        let path = dir.join(name);
        if !path.exists() {
            bail!("{} not built: cargo build --release --bins", path.display());
        }
        let child = Command::new(&path)
            .env("DATABASE_URL", &stores.database_url)
            .env("REDIS_URL", "redis://127.0.0.1:6379")
            .env("REDIS_KEY_PREFIX", &stores.prefix)
            .env("JWT_SECRET", "bench-jwt-secret-0123456789abcdef0123456789")
            .env("DATA_ENCRYPTION_KEY", "00".repeat(32))
            .env("META_APP_SECRET", "bench-meta-app-secret")
            .env("META_VERIFY_TOKEN", "bench-verify-token")
            .env("RAZORPAY_WEBHOOK_SECRET", "bench-razorpay-secret")
            .env("RAZORPAY_KEY_ID", "rzp_test_bench")
            .env("RAZORPAY_KEY_SECRET", "bench-razorpay-key-secret")
            .env(port_var, port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        children.push((*name, *port, child));
    }
    let client = reqwest::Client::new();
    for (name, port, _) in &children {
        let url = format!("http://127.0.0.1:{port}/readyz");
        let mut ready = false;
        for _ in 0..200 {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            bail!("{name} did not become ready");
        }
        // Exercise the service once, as a probe would, before measuring.
        let _ = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await;
    }
    tokio::time::sleep(Duration::from_secs(settle_secs)).await;
    for (name, _, child) in &children {
        let pid = child.id().context("child pid")?;
        let mut samples = Vec::new();
        for _ in 0..3 {
            samples.push(rss_kib(pid)?);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mib = median(samples) / 1024.0;
        println!("idle RSS {name}: {mib:.1} MiB (target < 30 MiB)");
    }
    for (_, _, mut child) in children {
        let _ = child.kill().await;
    }
    stores.drop_redis_keys().await?;
    Ok(())
}
