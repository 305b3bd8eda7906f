//! The Meta gateway issue's intake figures:
//! - signed single-status webhooks posted by wrk (a Lua script rotating pre-signed, all
//!   distinct bodies: no request is a duplicate the inbox could skip) to the release
//!   webhook-worker: acknowledged requests/s and ack latency (p50/p99), and the proof of
//!   durability: rows in `webhook_inbox` = 200s wrk counted;
//! - the reference: pgbench's single-row INSERT rate (one commit per row, as an intake without
//!   grouping would do) on the same database, in the same run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::{auth, median, stores};

pub(crate) const PORT: u16 = 23020;
pub(crate) const APP_SECRET: &str = "bench-meta-app-secret";

const WRK_SCRIPT: &str = r#"
-- Requests are formatted once, at init: building them per request in Lua would make wrk,
-- not the server, the bottleneck on two cores.
local tid_counter = 0
function setup(thread)
  thread:set("tid", tid_counter)
  tid_counter = tid_counter + 1
end
local requests, counter = {}, 0
function init(args)
  local threads = tonumber(args[2])
  local i = 0
  for line in io.lines(args[1]) do
    if i % threads == tid then
      local tab = line:find("\t", 1, true)
      requests[#requests + 1] = wrk.format("POST", "/webhook/meta",
        {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = line:sub(1, tab - 1)},
        line:sub(tab + 1))
    end
    i = i + 1
  end
end
function request()
  counter = counter + 1
  return requests[((counter - 1) % #requests) + 1]
end
"#;

struct IntakeRun {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    acked: u64,
    stored: i64,
}

pub async fn run(
    seconds: u64,
    connections: u32,
    runs: usize,
    bodies: usize,
    process_concurrency: usize,
) -> Result<()> {
    let dir = std::env::temp_dir().join("kloyst-bench-webhooks");
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("rotate.lua");
    std::fs::write(&script, WRK_SCRIPT)?;
    let mut intake = Vec::new();
    let mut reference = Vec::new();
    for run in 0..runs {
        let file = dir.join(format!("bodies-{run}.tsv"));
        generate(&file, bodies, run)?;
        let figures = intake_run(&file, &script, seconds, connections, process_concurrency).await?;
        println!(
            "run {}: {:.0} acks/s, p50 {:.2} ms, p99 {:.2} ms; wrk counted {} acks, webhook_inbox holds {} rows ({})",
            run + 1,
            figures.rps,
            figures.p50_ms,
            figures.p99_ms,
            figures.acked,
            figures.stored,
            if figures.stored >= figures.acked as i64 { "every ack durable; the rest were in flight when wrk stopped" } else { "MISSING ROWS" }
        );
        if figures.stored < figures.acked as i64 {
            bail!("acknowledged webhooks missing from the inbox");
        }
        if figures.acked as usize > bodies {
            println!("  (wrk wrapped around the bodies: raise --bodies so every request is new)");
        }
        intake.push(figures);
        let tps = pgbench_single_insert(seconds).await?;
        println!(
            "run {}: pgbench single-row INSERT (one commit per row): {tps:.0} rows/s",
            run + 1
        );
        reference.push(tps);
        let _ = std::fs::remove_file(&file);
    }
    let rps = median(intake.iter().map(|r| r.rps).collect());
    let p99 = median(intake.iter().map(|r| r.p99_ms).collect());
    let p50 = median(intake.iter().map(|r| r.p50_ms).collect());
    let pgbench = median(reference);
    let mode = if process_concurrency == 0 {
        "intake only (WEBHOOK_PROCESS_CONCURRENCY=0)".to_owned()
    } else {
        format!("intake while processing (WEBHOOK_PROCESS_CONCURRENCY={process_concurrency})")
    };
    println!(
        "{mode}, median of {runs}: {rps:.0} signed webhooks acknowledged durably per second (target >= 20000), p50 {p50:.2} ms, p99 {p99:.2} ms (target < 25 ms); pgbench single-row inserts {pgbench:.0}/s; intake / pgbench = {:.2}",
        rps / pgbench.max(1.0)
    );
    Ok(())
}

/// `bodies` distinct signed single-status notifications, one `signature<TAB>body` per line.
fn generate(path: &Path, bodies: usize, run: usize) -> Result<()> {
    let mut out = String::with_capacity(bodies * 700);
    for i in 0..bodies {
        let body = statuses_body(&json!([{
            "id": format!("wamid.bench{run}x{i:09}"),
            "status": "delivered",
            "timestamp": (1_750_000_000 + i).to_string(),
            "recipient_id": format!("9198{:08}", i % 100_000_000),
            "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
        }]));
        let signature = kloyst_meta::signature::sign(APP_SECRET.as_bytes(), body.as_bytes());
        writeln!(out, "{signature}\t{body}")?;
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// A Meta `messages` notification carrying `statuses` (a JSON array), as Meta posts it.
pub(crate) fn statuses_body(statuses: &serde_json::Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "100000000000001", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001234", "phone_number_id": "100000000000002"},
            "statuses": statuses
        }}]}]
    })
    .to_string()
}

pub(crate) fn binary(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()?
        .parent()
        .map(|dir| dir.join(name))
        .context("binary directory")?;
    if !path.exists() {
        bail!("{} not built: cargo build --release --bins", path.display());
    }
    Ok(path)
}

/// The release webhook-worker on [`PORT`] against `stores`, answering `/readyz`; killed when
/// dropped. `WEBHOOK_*` and `STATUS_*` tuning from the bench's own environment reaches it.
pub(crate) async fn start_worker(
    stores: &stores::BenchStores,
    process_concurrency: usize,
) -> Result<Child> {
    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("DATABASE_MAX_CONNECTIONS", "12".into()),
        ("REDIS_URL", "redis://127.0.0.1:6379".into()),
        ("REDIS_KEY_PREFIX", stores.prefix.clone()),
        ("WEBHOOK_PORT", PORT.to_string()),
        ("META_APP_SECRET", APP_SECRET.into()),
        ("META_VERIFY_TOKEN", "bench-verify-token".into()),
        ("RAZORPAY_WEBHOOK_SECRET", "bench-razorpay-secret".into()),
        (
            "WEBHOOK_PROCESS_CONCURRENCY",
            process_concurrency.to_string(),
        ),
        ("RUST_LOG", "warn".into()),
    ];
    let tuning: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("WEBHOOK_") || k.starts_with("STATUS_"))
        .collect();
    let worker = Command::new(binary("webhook-worker")?)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(tuning)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    auth::wait_ready(&format!("http://127.0.0.1:{PORT}/readyz")).await?;
    Ok(worker)
}

async fn intake_run(
    file: &Path,
    script: &Path,
    seconds: u64,
    connections: u32,
    process_concurrency: usize,
) -> Result<IntakeRun> {
    let stores = stores::fresh("kloyst_bench_webhooks").await?;
    let mut worker = start_worker(&stores, process_concurrency).await?;
    let threads = 2;
    let output = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://127.0.0.1:{PORT}/webhook/meta"))
        .arg("--")
        .arg(file)
        .arg(threads.to_string())
        .output()
        .await
        .context("run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let figures = auth::parse_wrk(&text)?;
    let requests: u64 = text
        .lines()
        .find_map(|l| {
            let (count, rest) = l.trim().split_once(" requests in ")?;
            rest.contains(',').then(|| count.parse().ok())?
        })
        .context("no request count in wrk output")?;
    let non_2xx: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // The worker stays up: what it acknowledged must already be there.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_inbox")
        .fetch_one(&stores.pg)
        .await?;
    let _ = worker.kill().await;
    stores.drop_redis_keys().await?;
    Ok(IntakeRun {
        rps: figures.rps,
        p50_ms: figures.p50_ms,
        p99_ms: figures.p99_ms,
        acked: requests - non_2xx,
        stored,
    })
}

/// pgbench: one row (a body-sized payload) per transaction, the intake's baseline.
async fn pgbench_single_insert(seconds: u64) -> Result<f64> {
    let stores = stores::fresh("kloyst_bench_webhooks_ref").await?;
    sqlx::raw_sql(
        "CREATE TABLE single_insert (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         received_at timestamptz NOT NULL DEFAULT now(), body bytea NOT NULL)",
    )
    .execute(&stores.pg)
    .await?;
    let script = std::env::temp_dir().join("kloyst-bench-webhooks/single_insert.sql");
    std::fs::write(
        &script,
        "INSERT INTO single_insert (body) VALUES (convert_to(repeat('x', 480), 'UTF8'));\n",
    )?;
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            "16",
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "kloyst_bench_webhooks_ref",
        ])
        .output()
        .await
        .context("run pgbench")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .with_context(|| format!("no tps in pgbench output: {text}"))
}
