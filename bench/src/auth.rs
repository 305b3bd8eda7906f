//! The identity issue's figures:
//! - `GET /v1/vendor/me` throughput and latency under wrk (authenticated; the session check,
//!   RLS and the query in one prepared call, `app_vendor_profile`), against the release
//!   api-gateway;
//! - the auth overhead alone: `Identity::verify_access_token` (the JWT check) plus opening
//!   and committing the tenant transaction with the session check (`begin_as_user`:
//!   user still active, `SET LOCAL ROLE`, `app.vendor_id`, one round trip), timed per call from 1 task (the latency it adds) and from 16
//!   concurrent tasks (under saturation, where queueing dominates); p50 and p99;
//! - `GET /v1/healthz` under the same wrk settings, as the server's own floor.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kloyst_config::sections::{DatabaseSettings, RedisSettings};
use kloyst_config::Env;
use kloyst_identity::{Identity, IdentitySettings};
use serde_json::{json, Value};
use tokio::process::Command;

use crate::{median, stores};

pub(crate) const PORT: u16 = 23010;

pub async fn run(seconds: u64, connections: u32) -> Result<()> {
    let stores = stores::fresh("kloyst_bench_auth").await?;
    let env = bench_env(&stores.database_url, &stores.prefix);
    let binary = std::env::current_exe()?
        .parent()
        .map(|dir| dir.join("api-gateway"))
        .context("binary directory")?;
    if !binary.exists() {
        bail!(
            "{} not built: cargo build --release --bins",
            binary.display()
        );
    }
    let mut api = Command::new(&binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{PORT}");
    wait_ready(&format!("{base}/readyz")).await?;
    let token = onboard(&base, &stores.pg).await?;

    let floor = wrk(&format!("{base}/v1/healthz"), None, seconds, connections).await?;
    let me = wrk(
        &format!("{base}/v1/vendor/me"),
        Some(&token),
        seconds,
        connections,
    )
    .await?;
    println!(
        "wrk GET /v1/healthz   (no auth, no db): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        floor.rps, floor.p50_ms, floor.p99_ms
    );
    println!(
        "wrk GET /v1/vendor/me (auth + RLS + query): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (target >= 5000 req/s, p99 < 20 ms)",
        me.rps, me.p50_ms, me.p99_ms
    );
    let _ = api.kill().await;

    for tasks in [1, 16] {
        let (p50, p99, calls) = auth_overhead(&env, &token, tasks).await?;
        println!(
            "auth overhead (JWT + session-checked tenant transaction), {calls} calls from {tasks} task(s): p50 {p50:.3} ms, p99 {p99:.3} ms (target p99 < 1 ms)"
        );
    }
    stores.drop_redis_keys().await?;
    Ok(())
}

pub(crate) fn bench_env(database_url: &str, prefix: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        // Two cores: more backends only add context switches.
        ("DATABASE_MAX_CONNECTIONS", "8"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("REDIS_KEY_PREFIX", prefix),
        ("JWT_SECRET", "bench-jwt-secret-0123456789abcdef0123456789"),
        ("DATA_ENCRYPTION_KEY", &"00".repeat(32)),
        ("RAZORPAY_KEY_ID", "rzp_test_bench"),
        ("RAZORPAY_KEY_SECRET", "bench-razorpay-key-secret"),
        ("API_PORT", &PORT.to_string()),
        // One vendor at full speed: lift the per-vendor limit for the measurement.
        ("RATE_LIMIT_API_PER_VENDOR", "100000000/min"),
        ("RATE_LIMIT_AUTH_PER_IP", "1000/min"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub(crate) async fn wait_ready(url: &str) -> Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} never became ready")
}

/// register → the code from the queued mail → verify; returns an access token.
pub(crate) async fn onboard(base: &str, pg: &kloyst_db::PgPool) -> Result<String> {
    let client = reqwest::Client::new();
    let email = "bench-owner@kloyst.test";
    let registered = client
        .post(format!("{base}/v1/auth/register"))
        .json(&json!({ "email": email, "password": "bench passphrase long", "name": "Bench", "company_name": "Bench Co" }))
        .send()
        .await?;
    if !registered.status().is_success() {
        bail!("register: {}", registered.text().await?);
    }
    let text: String = sqlx::query_scalar(
        "SELECT payload->>'text' FROM outbox_events WHERE kind = 'mail.send' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(pg)
    .await?;
    let code: String = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .context("no code in the mail")?
        .to_owned();
    let verified: Value = client
        .post(format!("{base}/v1/auth/verify-otp"))
        .json(&json!({ "email": email, "otp": code }))
        .send()
        .await?
        .json()
        .await?;
    verified["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access token")
}

pub(crate) struct WrkResult {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

pub(crate) async fn wrk(
    url: &str,
    token: Option<&str>,
    seconds: u64,
    connections: u32,
) -> Result<WrkResult> {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command
        .arg(url)
        .output()
        .await
        .context("run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") {
        bail!("wrk saw non-2xx answers:\n{text}");
    }
    parse_wrk(&text)
}

/// Requests/s and the 50th and 99th latency percentiles of wrk's `--latency` output.
pub(crate) fn parse_wrk(text: &str) -> Result<WrkResult> {
    let field = |prefix: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(prefix))?;
        let value = line.split_whitespace().nth(1)?;
        parse_ms(value)
    };
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    Ok(WrkResult {
        rps,
        p50_ms: field("50%").context("no p50")?,
        p99_ms: field("99%").context("no p99")?,
    })
}

/// wrk prints latencies as `812.00us`, `1.23ms` or `1.02s`.
fn parse_ms(value: &str) -> Option<f64> {
    if let Some(us) = value.strip_suffix("us") {
        return us.parse::<f64>().ok().map(|v| v / 1000.0);
    }
    if let Some(ms) = value.strip_suffix("ms") {
        return ms.parse().ok();
    }
    value
        .strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .map(|v| v * 1000.0)
}

async fn auth_overhead(
    env: &[(String, String)],
    token: &str,
    concurrency: usize,
) -> Result<(f64, f64, usize)> {
    let env = Env::from_pairs(env.iter().cloned());
    let pg = kloyst_db::connect(&DatabaseSettings::from_env(&env)?, "kloyst-bench")?;
    let redis = kloyst_db::redis::connect(&RedisSettings::from_env(&env)?)?;
    let identity = Identity::new(pg.clone(), redis, IdentitySettings::from_env(&env)?);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let identity = identity.clone();
        let pg = pg.clone();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let principal = identity.verify_access_token(&token)?;
                let tx = kloyst_db::begin_as_user(
                    &pg,
                    principal.vendor_id,
                    principal.user_id,
                    principal.role.as_str(),
                )
                .await?;
                tx.commit().await?;
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<Vec<f64>, anyhow::Error>(samples)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or(0.0);
    Ok((median(all.clone()), p99, all.len()))
}
