//! The campaign engine against the simulator (in this process) and the real worker-pool
//! binary (a child, so that its resident memory is its own):
//!
//! - cap lifted (`META_SEND_RATE=0`, simulator uncapped): each campaign size dispatched from
//!   the `DispatchCampaign` job to COMPLETED; messages/s and the worker-pool's peak RSS;
//! - cap at 80/s: the achieved rate and the busiest 1-second window in the simulator's own
//!   record of sends (never above the cap).
//!
//! The campaign is set up as the launch leaves it (QUEUED, recipients PENDING 1..N), in SQL,
//! so that only the dispatch is measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kloyst_campaigns::DispatchCampaign;
use kloyst_queue::{OutgoingMessage, Queue, QueueConfig};
use meta_sim::{Behaviour, SimSettings};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{median, stores};

const ACCESS_TOKEN: &str = "bench-meta-token";
const WABA_ID: &str = "100000000000001";
const PHONE_NUMBER_ID: &str = "100000000000002";
const METRICS_PORT: u16 = 23301;

pub async fn run(
    sizes: &[i64],
    cap_recipients: i64,
    cap: u32,
    runs: usize,
    launch_recipients: i64,
    launch_runs: usize,
) -> Result<()> {
    let (p50, p95, max) = launch_latency(launch_recipients, launch_runs).await?;
    println!(
        "campaign: POST /v1/campaigns/launch of {launch_recipients} recipients, {launch_runs} \
         launches: p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms (target p95 < 1000 ms)"
    );
    for &size in sizes {
        let mut rates = Vec::new();
        let mut peaks = Vec::new();
        for _ in 0..runs {
            let run = dispatch(size, 0).await?;
            rates.push(run.rate);
            peaks.push(run.peak_rss_mib);
        }
        println!(
            "campaign: {size} recipients, cap lifted: median {:.0} messages/s (runs {:?}), \
             worker-pool peak RSS median {:.1} MiB (runs {:?}) (targets >= 5000/s, < 150 MB)",
            median(rates.clone()),
            rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
            median(peaks.clone()),
            peaks
                .iter()
                .map(|p| (p * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
        );
    }
    let capped = dispatch(cap_recipients, cap).await?;
    println!(
        "campaign: {cap_recipients} recipients at META_SEND_RATE={cap}: sending rate {:.1} \
         messages/s ({:.1}% of the cap; target >= 95%; first to last send in the simulator's \
         record), {:.1}/s from the job to COMPLETED; busiest 1-second window: {} sends (never \
         above {cap})",
        capped.sending_rate,
        capped.sending_rate * 100.0 / f64::from(cap),
        capped.rate,
        capped.busiest_window
    );
    Ok(())
}

struct DispatchRun {
    /// Recipients / (job published → campaign COMPLETED).
    rate: f64,
    /// Sends / (first send → last send) in the simulator's record (capped runs only).
    sending_rate: f64,
    peak_rss_mib: f64,
    busiest_window: usize,
}

async fn dispatch(recipients: i64, send_rate: u32) -> Result<DispatchRun> {
    let stores = stores::fresh("kloyst_bench_campaign").await?;
    let (vendor, campaign) = seed(&stores.pg, recipients).await?;

    let behaviour = Behaviour {
        // The simulator's own cap off: the worker-pool's limiter is what is measured.
        rate_per_second: 0,
        // The bench's template was never submitted to this simulator.
        accept_unknown_templates: true,
        ..Behaviour::default()
    };
    let settings = SimSettings {
        access_token: ACCESS_TOKEN.to_owned(),
        app_secret: "bench-meta-app-secret".to_owned(),
        waba_id: WABA_ID.to_owned(),
        phone_number_id: PHONE_NUMBER_ID.to_owned(),
        display_phone_number: "15550001234".to_owned(),
        webhook_url: None,
        behaviour,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let sim_base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let sim = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { meta_sim::serve(settings, listener, shutdown).await }
    });

    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("DATABASE_MAX_CONNECTIONS", "16".into()),
        ("REDIS_URL", "redis://127.0.0.1:6379".into()),
        ("REDIS_KEY_PREFIX", stores.prefix.clone()),
        ("METRICS_PORT", METRICS_PORT.to_string()),
        ("META_API_BASE", sim_base.clone()),
        ("META_ACCESS_TOKEN", ACCESS_TOKEN.into()),
        ("META_WABA_ID", WABA_ID.into()),
        ("META_PHONE_NUMBER_ID", PHONE_NUMBER_ID.into()),
        ("META_SEND_RATE", send_rate.to_string()),
        ("RUST_LOG", "warn".into()),
    ];
    // CAMPAIGN_* tuning from the bench's own environment reaches the worker-pool.
    let tuning: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CAMPAIGN_"))
        .collect();
    let mut worker = Command::new(crate::webhooks::binary("worker-pool")?)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(tuning)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    crate::auth::wait_ready(&format!("http://127.0.0.1:{METRICS_PORT}/readyz")).await?;
    let pid = worker.id().context("worker-pool pid")?;

    let queue = Queue::new(
        stores.redis.clone(),
        QueueConfig::with_prefix(stores.prefix.clone()),
        kloyst_queue::streams::JOBS,
    );
    let job = DispatchCampaign {
        campaign_id: campaign,
        vendor_id: vendor,
    };
    let started = Instant::now();
    queue.publish(&OutgoingMessage::from_job(&job)?).await?;
    let mut peak_kib = 0.0_f64;
    let deadline = started + Duration::from_secs(600);
    loop {
        peak_kib = peak_kib.max(crate::idle_memory::rss_kib(pid)?);
        let status: String = sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1")
            .bind(campaign)
            .fetch_one(&stores.pg)
            .await?;
        if status == "COMPLETED" {
            break;
        }
        if Instant::now() > deadline || !matches!(status.as_str(), "QUEUED" | "PROCESSING") {
            bail!(
                "campaign ended {status} (or timed out) after {:?}",
                started.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM campaign_recipients WHERE campaign_id = $1 AND status = 'SENT'",
    )
    .bind(campaign)
    .fetch_one(&stores.pg)
    .await?;
    let stats: Value = reqwest::get(format!("{sim_base}/_sim/stats"))
        .await?
        .json()
        .await?;
    let accepted = stats["sends_accepted"].as_i64().unwrap_or(-1);
    if sent != recipients || accepted != recipients {
        let statuses: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status || coalesce(' ' || error_message, ''), count(*) FROM campaign_recipients
              WHERE campaign_id = $1 GROUP BY 1",
        )
        .bind(campaign)
        .fetch_all(&stores.pg)
        .await?;
        bail!(
            "{recipients} recipients: {sent} SENT, the simulator accepted {accepted}; {statuses:?}"
        );
    }
    let (busiest_window, sending_rate) = if send_rate > 0 {
        busiest_second(&sim_base, recipients).await?
    } else {
        (0, 0.0)
    };
    let _ = worker.kill().await;
    shutdown.cancel();
    let _ = sim.await;
    stores.drop_redis_keys().await?;
    Ok(DispatchRun {
        rate: recipients as f64 / elapsed,
        sending_rate,
        peak_rss_mib: peak_kib / 1024.0,
        busiest_window,
    })
}

/// Launches of one list through the real api-gateway binary: the answer's latency (quote,
/// hold, recipients frozen, outbox) as a client sees it.
async fn launch_latency(recipients: i64, runs: usize) -> Result<(f64, f64, f64)> {
    let stores = stores::fresh("kloyst_bench_launch").await?;
    crate::quote::load_sample_card(&stores.pg).await?;
    let env = crate::auth::bench_env(&stores.database_url, &stores.prefix);
    let mut api = Command::new(crate::webhooks::binary("api-gateway")?)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{}", crate::auth::PORT);
    crate::auth::wait_ready(&format!("{base}/readyz")).await?;
    let token = crate::auth::onboard(&base, &stores.pg).await?;
    let vendor: Uuid = sqlx::query_scalar("SELECT id FROM vendors LIMIT 1")
        .fetch_one(&stores.pg)
        .await?;
    let template = approved_template(&stores.pg, vendor).await?;
    insert_contacts(&stores.pg, vendor, recipients).await?;
    let list: Uuid = sqlx::query_scalar(
        "WITH l AS (INSERT INTO contact_lists (vendor_id, name) VALUES ($1, 'Everyone')
                    RETURNING id)
         SELECT id FROM l",
    )
    .bind(vendor)
    .fetch_one(&stores.pg)
    .await?;
    sqlx::query(
        "INSERT INTO contact_list_members (list_id, contact_id, vendor_id)
         SELECT $2, id, vendor_id FROM contacts WHERE vendor_id = $1",
    )
    .bind(vendor)
    .bind(list)
    .execute(&stores.pg)
    .await?;
    sqlx::raw_sql("ANALYZE contacts; ANALYZE contact_list_members")
        .execute(&stores.pg)
        .await?;
    kloyst_billing::Ledger::new(stores.pg.clone())
        .post_credit(
            kloyst_core::VendorId::from_uuid(vendor),
            kloyst_billing::Credit {
                kind: kloyst_billing::CreditKind::Recharge,
                amount: rust_decimal::Decimal::from(100_000_000),
                reference: "recharge:pay_bench".to_owned(),
                payment_order_id: None,
                description: None,
                created_by: None,
            },
        )
        .await?;
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    for run in 0..runs {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/v1/campaigns/launch"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "name": format!("Bench launch {run}"),
                "template_id": template,
                "list_id": list,
                "parameters": {"1": {"attribute": "name", "fallback": "there"}},
            }))
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        if status != reqwest::StatusCode::ACCEPTED {
            bail!("launch answered {status}: {body}");
        }
    }
    let _ = api.kill().await;
    stores.drop_redis_keys().await?;
    let mut sorted = latencies.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let p95 = sorted[((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len()) - 1];
    Ok((median(latencies), p95, sorted[sorted.len() - 1]))
}

/// The most sends the simulator accepted in any 1-second window starting at a send, and the
/// rate between its first and last send.
async fn busiest_second(sim_base: &str, recipients: i64) -> Result<(usize, f64)> {
    let sends: Vec<Value> = reqwest::get(format!("{sim_base}/_sim/messages?limit={recipients}"))
        .await?
        .json()
        .await?;
    let mut times: Vec<i64> = sends
        .iter()
        .filter_map(|s| s["at"].as_str())
        .filter_map(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.timestamp_micros())
        .collect();
    times.sort_unstable();
    let mut busiest = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= 1_000_000 {
            start += 1;
        }
        busiest = busiest.max(end - start + 1);
    }
    let span = match (times.first(), times.last()) {
        (Some(first), Some(last)) if last > first => (last - first) as f64 / 1e6,
        _ => 0.0,
    };
    let rate = if span > 0.0 {
        (times.len() - 1) as f64 / span
    } else {
        0.0
    };
    Ok((busiest, rate))
}

/// A vendor, an approved one-parameter template, `recipients` contacts in India and a
/// QUEUED campaign over them, as the launch leaves it.
async fn seed(pg: &sqlx::PgPool, recipients: i64) -> Result<(Uuid, Uuid)> {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Bench campaign') RETURNING id")
            .fetch_one(pg)
            .await?;
    sqlx::query("INSERT INTO wallets (vendor_id) VALUES ($1)")
        .bind(vendor)
        .execute(pg)
        .await?;
    let template = approved_template(pg, vendor).await?;
    insert_contacts(pg, vendor, recipients).await?;
    let campaign: Uuid = sqlx::query_scalar(
        "INSERT INTO campaigns (vendor_id, name, template_id, parameters, status, queued_at,
                                total_count, pending_count)
         VALUES ($1, 'Bench', $2, '{\"1\": {\"attribute\": \"name\", \"fallback\": \"there\"}}',
                 'QUEUED', now(), $3, $3)
         RETURNING id",
    )
    .bind(vendor)
    .bind(template)
    .bind(i32::try_from(recipients)?)
    .fetch_one(pg)
    .await?;
    sqlx::query(
        "INSERT INTO campaign_recipients (campaign_id, seq, vendor_id, contact_id, mobile, country)
         SELECT $1, row_number() OVER (ORDER BY id), vendor_id, id, mobile, country
           FROM contacts WHERE vendor_id = $2",
    )
    .bind(campaign)
    .bind(vendor)
    .execute(pg)
    .await?;
    sqlx::raw_sql("ANALYZE campaign_recipients; ANALYZE contacts")
        .execute(pg)
        .await?;
    Ok((vendor, campaign))
}

/// An APPROVED MARKETING template with one body parameter.
async fn approved_template(pg: &sqlx::PgPool, vendor: Uuid) -> Result<Uuid> {
    Ok(sqlx::query_scalar(
        "INSERT INTO templates (vendor_id, name, language, category, components, param_count,
                                meta_name, status)
         VALUES ($1, 'bench_hello', 'en_US', 'MARKETING',
                 '[{\"type\": \"BODY\", \"text\": \"Hello {{1}}, our sale starts today!\"}]',
                 1, 'bench_hello', 'APPROVED')
         RETURNING id",
    )
    .bind(vendor)
    .fetch_one(pg)
    .await?)
}

/// `count` contacts in India with a name.
async fn insert_contacts(pg: &sqlx::PgPool, vendor: Uuid, count: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO contacts (vendor_id, mobile, country, attributes)
         SELECT $1, (919000000000 + i)::text, 'IN', jsonb_build_object('name', 'Customer ' || i)
           FROM generate_series(1, $2::bigint) AS i",
    )
    .bind(vendor)
    .bind(count)
    .execute(pg)
    .await?;
    Ok(())
}

/// Sizes from `--sizes 10000,100000`.
pub fn sizes(args: &[String]) -> Vec<i64> {
    let raw = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or("10000,100000");
    let sizes: BTreeMap<i64, ()> = raw
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .map(|s| (s, ()))
        .collect();
    sizes.into_keys().collect()
}
