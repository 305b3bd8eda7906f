//! The delivery/charging issue's figures, through the release webhook-worker (intake →
//! inbox → `message_status_events` → `StatusApplier` → ledger) on the real Postgres/Redis:
//!
//! - **burst**: N single-status `delivered` (PMP, billable, marketing) webhooks of one vendor,
//!   posted by C concurrent clients, for N PENDING logs of one campaign with a hold: the time
//!   from the last acknowledgement (200) to the last `DEBIT_MESSAGE` ledger row (target
//!   < 0.5 s), and the ledger exact;
//! - **sustained**: S unique statuses (sent / delivered / read mixes) for S/2 logs over a few
//!   vendors, 30 % of them posted a second time in another POST, shuffled, up to 1,000 per
//!   POST (Meta's maximum), by P concurrent posters: statuses/s received, applied and debited
//!   from the first POST (target ≥ 10,000/s end to end), ack latency (target p99 < 25 ms),
//!   every log's status and the ledger exact. The POSTs arrive at `--rate` statuses per
//!   second (15,000 by default: above the 10,000/s target once the 30 % duplicates are taken
//!   out), spread evenly; `--rate 0` posts them all as fast as the posters can instead (within
//!   a few hundred ms: a flood far above any sustained rate, which measures how fast the
//!   backlog drains).
//!
//! Completion is polled with a cheap query; the table-scanning counts of the timeline are
//! taken every tenth poll only, so the harness does not take the CPU it measures.
//!
//! The ledger side of the burst is read two ways: the rows' `created_at` (`now()`, the start
//! of the applier's transaction, so a lower bound) and the moment a poll of this process first
//! saw every row committed (an upper bound, within the poll interval). Both clocks are this
//! machine's.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use chrono::{DateTime, Utc};
use kloyst_billing::{hold_in, invariant_violations, Credit, CreditKind, HoldRequest, Ledger};
use kloyst_core::VendorId;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::quote::percentile;
use crate::webhooks::{statuses_body, APP_SECRET, PORT};
use crate::{median, stores};

/// Each vendor's recharge, INR.
const CREDIT: i64 = 10_000_000;
/// The campaign hold per message, INR: covers India's marketing rate on the SAMPLE card.
const HOLD_PER_MESSAGE: i64 = 2;
/// Statuses per POST at most (Meta's own maximum).
const MAX_PER_POST: usize = 1_000;
/// Share of the sustained statuses posted a second time.
const DUPLICATE_SHARE: f64 = 0.30;
/// How long a phase may take before the run is called stuck.
const DEADLINE: Duration = Duration::from_secs(180);

/// Sizes and concurrency of one `delivery` invocation.
pub struct Options {
    pub burst: usize,
    pub burst_concurrency: usize,
    pub statuses: usize,
    pub vendors: usize,
    pub posters: usize,
    pub process_concurrency: usize,
    /// `--rate` (15,000): statuses posted per second in the sustained phase (duplicates
    /// included, so ~11,500 unique statuses/s offered), POSTs spread evenly over time; 0 =
    /// every POST as fast as the posters can (a flood: how fast the backlog drains).
    pub rate: f64,
    pub runs: usize,
}

impl Options {
    pub fn from_args(args: &[String]) -> Self {
        Self {
            burst: crate::arg(args, "--burst", 1_000),
            burst_concurrency: crate::arg(args, "--burst-concurrency", 16),
            statuses: crate::arg(args, "--statuses", 60_000),
            vendors: crate::arg(args, "--vendors", 4),
            posters: crate::arg(args, "--posters", 4),
            process_concurrency: crate::arg(args, "--process-concurrency", 4),
            rate: crate::arg(args, "--rate", 15_000.0),
            runs: crate::arg(args, "--runs", 3),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::from_args(&[])
    }
}

pub async fn run(options: &Options) -> Result<()> {
    ensure!(options.runs > 0, "--runs must be at least 1");
    ensure!(
        options.burst > 0 && options.statuses >= 4,
        "sizes too small"
    );
    let (mut bursts, mut sustained) = (Vec::new(), Vec::new());
    for run in 1..=options.runs {
        let last = run == options.runs;
        let burst = burst_run(options, last).await?;
        println!(
            "delivery run {run}: burst of {}: posted in {:.0} ms, last ack → last debit {:.0} ms \
             (created_at) / {:.0} ms (seen committed); ledger exact",
            options.burst, burst.posting_ms, burst.ledger_ms, burst.seen_ms
        );
        bursts.push(burst);
        let figures = sustained_run(options, run as u64, last).await?;
        println!(
            "delivery run {run}: sustained {} unique + {} duplicate statuses in {} POSTs: \
             received {:.0}/s, applied {:.0}/s, debited {:.0}/s (first POST → all applied in \
             {:.2} s), ack p50 {:.1} ms, p99 {:.1} ms; logs and ledger exact",
            figures.unique,
            figures.posted - figures.unique,
            figures.posts,
            figures.received_rate,
            figures.applied_rate,
            figures.debited_rate,
            figures.applied_secs,
            figures.p50_ms,
            figures.p99_ms
        );
        sustained.push(figures);
    }
    let med = |values: Vec<f64>| median(values);
    let burst_ledger = med(bursts.iter().map(|b| b.ledger_ms).collect());
    let burst_seen = med(bursts.iter().map(|b| b.seen_ms).collect());
    let applied = med(sustained.iter().map(|s| s.applied_rate).collect());
    let p99 = med(sustained.iter().map(|s| s.p99_ms).collect());
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let (unique, posted) = (sustained[0].unique, sustained[0].posted);
    let arrival = if options.rate > 0.0 {
        format!("sustained POSTs paced at {:.0} statuses/s", options.rate)
    } else {
        "sustained POSTs as fast as the posters can (a flood)".to_owned()
    };
    println!("delivery, median of {} runs ({arrival}):", options.runs);
    println!("  {:<76} {:>8}  target", "figure", "median");
    let rows: Vec<(String, String, String)> = vec![
        (
            format!(
                "burst: {} webhooks posted (concurrency {}), ms",
                options.burst, options.burst_concurrency
            ),
            format!("{:.0}", med(bursts.iter().map(|b| b.posting_ms).collect())),
            "< 2000".into(),
        ),
        (
            "burst: last ack → last debit (row created_at), ms".into(),
            format!("{burst_ledger:.0}"),
            format!("< 500 ({})", verdict(burst_ledger < 500.0)),
        ),
        (
            "burst: last ack → last debit seen committed (poll), ms".into(),
            format!("{burst_seen:.0}"),
            format!("< 500 ({})", verdict(burst_seen < 500.0)),
        ),
        (
            format!(
                "burst: ack p99 (single-status POSTs), ms (p50 {:.1})",
                med(bursts.iter().map(|b| b.p50_ms).collect())
            ),
            format!("{:.1}", med(bursts.iter().map(|b| b.p99_ms).collect())),
            String::new(),
        ),
        (
            format!("sustained: statuses received/s ({posted} posted incl. duplicates)"),
            format!(
                "{:.0}",
                med(sustained.iter().map(|s| s.received_rate).collect())
            ),
            String::new(),
        ),
        (
            format!("sustained: unique statuses applied/s ({unique}, first POST → all applied)"),
            format!("{applied:.0}"),
            format!(">= 10000 ({})", verdict(applied >= 10_000.0)),
        ),
        (
            "sustained: messages debited/s (first POST → last debit seen)".into(),
            format!(
                "{:.0}",
                med(sustained.iter().map(|s| s.debited_rate).collect())
            ),
            String::new(),
        ),
        (
            format!(
                "sustained: ack p99 ({} posters, <= {MAX_PER_POST} statuses/POST), ms (p50 {:.1})",
                options.posters,
                med(sustained.iter().map(|s| s.p50_ms).collect())
            ),
            format!("{p99:.1}"),
            format!("< 25 ({})", verdict(p99 < 25.0)),
        ),
    ];
    for (figure, value, target) in rows {
        println!("  {figure:<76} {value:>8}  {target}");
    }
    println!("  ledger exact in every run (debit counts, balances, holds, invariants): yes");
    Ok(())
}

struct BurstRun {
    posting_ms: f64,
    ledger_ms: f64,
    seen_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn burst_run(options: &Options, print: bool) -> Result<BurstRun> {
    let stores = stores::fresh("kloyst_bench_delivery").await?;
    crate::quote::load_sample_card(&stores.pg).await?;
    let n = options.burst;
    let wamids: Vec<String> = (0..n).map(|i| format!("wamid.burst.{i:07}")).collect();
    let tenant = seed_tenant(&stores.pg, "Bench burst", &wamids).await?;
    let mut worker = crate::webhooks::start_worker(&stores, options.process_concurrency).await?;

    let at = Utc::now().timestamp() - 60;
    let bodies: Vec<Signed> = wamids
        .iter()
        .enumerate()
        .map(|(i, wamid)| sign(&json!([status(wamid, "delivered", at, i)])))
        .collect();
    let (posted, (seen_at, timeline)) = tokio::try_join!(
        post_all(bodies, options.burst_concurrency, 0.0),
        watch(
            &stores.pg,
            Duration::from_millis(10),
            "SELECT count(*) >= $1 FROM transactions WHERE kind = 'DEBIT_MESSAGE'",
            n as i64,
        ),
    )?;
    let last_debit: DateTime<Utc> =
        sqlx::query_scalar("SELECT max(created_at) FROM transactions WHERE kind = 'DEBIT_MESSAGE'")
            .fetch_one(&stores.pg)
            .await?;
    verify(&stores.pg, std::slice::from_ref(&tenant), &[n as i64]).await?;
    let _ = worker.kill().await;
    stores.drop_redis_keys().await?;
    if print {
        print_timeline("burst", &timeline, &posted, 40);
    }
    let latencies = sorted(posted.latencies_ms.clone());
    Ok(BurstRun {
        posting_ms: (posted.last_ack - posted.first_post).as_secs_f64() * 1000.0,
        ledger_ms: (last_debit - posted.last_ack_wall)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1000.0,
        seen_ms: seen_at
            .saturating_duration_since(posted.last_ack)
            .as_secs_f64()
            * 1000.0,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    })
}

struct SustainedRun {
    unique: usize,
    posted: usize,
    posts: usize,
    received_rate: f64,
    applied_rate: f64,
    applied_secs: f64,
    debited_rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// The statuses of message `i`, by `i % 4`: sent+delivered, sent+delivered+read, sent only
/// (never charged), delivered+read. Two on average; three in four messages are charged.
fn mix(i: usize) -> &'static [&'static str] {
    match i % 4 {
        0 => &["sent", "delivered"],
        1 => &["sent", "delivered", "read"],
        2 => &["sent"],
        _ => &["delivered", "read"],
    }
}

async fn sustained_run(options: &Options, seed: u64, print: bool) -> Result<SustainedRun> {
    let stores = stores::fresh("kloyst_bench_delivery").await?;
    crate::quote::load_sample_card(&stores.pg).await?;
    let mut rng = StdRng::seed_from_u64(seed);
    // Messages until the mix reaches the requested number of unique statuses.
    let (mut messages, mut unique) = (0, 0);
    while unique < options.statuses {
        unique += mix(messages).len();
        messages += 1;
    }
    let vendors = options.vendors.clamp(1, messages);
    let mut tenants = Vec::with_capacity(vendors);
    let mut expected_debits = Vec::with_capacity(vendors);
    let mut statuses: Vec<Value> = Vec::with_capacity(unique);
    let base = Utc::now().timestamp() - 3_600;
    for v in 0..vendors {
        let mine: Vec<usize> = (v..messages).step_by(vendors).collect();
        let wamids: Vec<String> = mine.iter().map(|i| format!("wamid.s{v}.{i:08}")).collect();
        tenants.push(seed_tenant(&stores.pg, &format!("Bench vendor {v}"), &wamids).await?);
        expected_debits.push(mine.iter().filter(|&&i| i % 4 != 2).count() as i64);
        for (i, wamid) in mine.iter().zip(&wamids) {
            let sent = base + (*i as i64 % 1_800);
            for kind in mix(*i) {
                let at = match *kind {
                    "sent" => sent,
                    "delivered" => sent + 2,
                    _ => sent + 9,
                };
                statuses.push(status(wamid, kind, at, *i));
            }
        }
    }
    let bodies = shuffled_posts(statuses, &mut rng)?;
    let (posts, posted_count) = (bodies.len(), bodies.iter().map(|b| b.statuses).sum());
    let mut worker = crate::webhooks::start_worker(&stores, options.process_concurrency).await?;

    let total_debits: i64 = expected_debits.iter().sum();
    let unique_i = unique as i64;
    let (posted, (applied_at, timeline)) = tokio::try_join!(
        post_all(bodies, options.posters, options.rate),
        // Every POST is one inbox row (no two bodies are equal); statuses and their debits
        // commit with their row, so all rows processed and no status left due is the end.
        watch(
            &stores.pg,
            Duration::from_millis(50),
            "SELECT (SELECT count(*) FROM webhook_inbox WHERE state = 'PROCESSED') >= $1 \
                AND NOT EXISTS (SELECT 1 FROM message_status_events \
                                 WHERE applied_at IS NULL AND dead_at IS NULL)",
            posts as i64,
        ),
    )?;
    let debited_at = timeline
        .iter()
        .find(|s| s.counts.debits >= total_debits)
        .map_or(applied_at, |s| s.at);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM message_status_events")
        .fetch_one(&stores.pg)
        .await?;
    ensure!(
        stored == unique_i,
        "{stored} statuses stored for {unique} unique ones: duplicates were not recognised"
    );
    verify_statuses(&stores.pg, messages).await?;
    verify(&stores.pg, &tenants, &expected_debits).await?;
    let _ = worker.kill().await;
    stores.drop_redis_keys().await?;
    if print {
        print_timeline("sustained", &timeline, &posted, 30);
    }
    let secs = |at: Instant| {
        at.saturating_duration_since(posted.first_post)
            .as_secs_f64()
    };
    let latencies = sorted(posted.latencies_ms.clone());
    Ok(SustainedRun {
        unique,
        posted: posted_count,
        posts,
        received_rate: posted_count as f64 / secs(posted.last_ack),
        applied_rate: unique as f64 / secs(applied_at),
        applied_secs: secs(applied_at),
        debited_rate: total_debits as f64 / secs(debited_at),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
    })
}

/// One Meta status object: billable PMP marketing pricing, as Meta sends it on every status
/// of a marketing template message.
fn status(wamid: &str, kind: &str, at: i64, recipient: usize) -> Value {
    json!({
        "id": wamid,
        "status": kind,
        "timestamp": at.to_string(),
        "recipient_id": recipient_number(recipient),
        "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    })
}

fn recipient_number(i: usize) -> String {
    format!("9198{:08}", i % 100_000_000)
}

/// A body and its `X-Hub-Signature-256`.
struct Signed {
    signature: String,
    body: String,
    statuses: usize,
}

fn sign(statuses: &Value) -> Signed {
    let body = statuses_body(statuses);
    Signed {
        signature: kloyst_meta::signature::sign(APP_SECRET.as_bytes(), body.as_bytes()),
        statuses: statuses.as_array().map_or(0, Vec::len),
        body,
    }
}

/// Every status once, a random 30 % a second time, shuffled into POSTs of at most
/// [`MAX_PER_POST`]; a second copy never shares a POST with its first (a duplicate within
/// one body is no redelivery).
fn shuffled_posts(mut statuses: Vec<Value>, rng: &mut StdRng) -> Result<Vec<Signed>> {
    statuses.shuffle(rng);
    let unique = statuses.len();
    let duplicates = (unique as f64 * DUPLICATE_SHARE).round() as usize;
    // One below the maximum: the spread below evens the posts out to within one status.
    let posts = (unique + duplicates).div_ceil(MAX_PER_POST - 1).max(2);
    // Originals spread evenly over the posts, then duplicates likewise, each moved past the
    // post that holds its original.
    let first_per_post = unique.div_ceil(posts);
    let mut chosen: Vec<usize> = (0..unique).collect();
    chosen.shuffle(rng);
    chosen.truncate(duplicates);
    let mut bins: Vec<Vec<Value>> = vec![Vec::new(); posts];
    for (i, status) in statuses.iter().enumerate() {
        bins[i / first_per_post].push(status.clone());
    }
    for original in chosen {
        let home = original / first_per_post;
        // The least-filled post other than the original's (ties broken at random).
        let start = rng.gen_range(0..posts);
        let target = (0..posts)
            .map(|k| (start + k) % posts)
            .filter(|&p| p != home)
            .min_by_key(|&p| bins[p].len())
            .unwrap_or((home + 1) % posts);
        bins[target].push(statuses[original].clone());
    }
    let largest = bins.iter().map(Vec::len).max().unwrap_or(0);
    ensure!(largest <= MAX_PER_POST, "a POST of {largest} statuses");
    Ok(bins
        .into_iter()
        .filter(|b| !b.is_empty())
        .map(|mut bin| {
            bin.shuffle(rng);
            sign(&Value::Array(bin))
        })
        .collect())
}

/// What the posters saw.
struct Posted {
    first_post: Instant,
    last_ack: Instant,
    last_ack_wall: DateTime<Utc>,
    latencies_ms: Vec<f64>,
}

/// Posts every body once, `concurrency` at a time (body k by poster k mod concurrency);
/// anything but 200 stops the run. With a `rate` (statuses per second, > 0), body k is not
/// posted before the moment its statuses are due at that rate (the first at once).
async fn post_all(bodies: Vec<Signed>, concurrency: usize, rate: f64) -> Result<Posted> {
    let concurrency = concurrency.max(1);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("http://127.0.0.1:{PORT}/webhook/meta");
    let mut shares: Vec<Vec<(Duration, Signed)>> = (0..concurrency).map(|_| Vec::new()).collect();
    let mut before = 0usize;
    for (k, body) in bodies.into_iter().enumerate() {
        let due = if rate > 0.0 {
            Duration::from_secs_f64(before as f64 / rate)
        } else {
            Duration::ZERO
        };
        before += body.statuses;
        shares[k % concurrency].push((due, body));
    }
    let first_post = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut acks = Vec::with_capacity(share.len());
                for (due, signed) in share {
                    tokio::time::sleep_until((first_post + due).into()).await;
                    let started = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", signed.signature)
                        .body(signed.body)
                        .send()
                        .await?;
                    let status = response.status();
                    let acked = Instant::now();
                    let wall = Utc::now();
                    if status != reqwest::StatusCode::OK {
                        bail!(
                            "the webhook-worker answered {status}: {}",
                            response.text().await?
                        );
                    }
                    acks.push((acked, wall, (acked - started).as_secs_f64() * 1000.0));
                }
                Ok::<_, anyhow::Error>(acks)
            })
        })
        .collect();
    let mut posted = Posted {
        first_post,
        last_ack: first_post,
        last_ack_wall: Utc::now(),
        latencies_ms: Vec::new(),
    };
    let mut last_wall = None;
    for task in tasks {
        for (acked, wall, latency) in task.await?? {
            posted.last_ack = posted.last_ack.max(acked);
            last_wall = last_wall.max(Some(wall));
            posted.latencies_ms.push(latency);
        }
    }
    posted.last_ack_wall = last_wall.context("nothing was posted")?;
    Ok(posted)
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(|a, b| a.total_cmp(b));
    values
}

/// The pipeline's progress, from the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
struct Counts {
    inbox: i64,
    processed: i64,
    stored: i64,
    applied: i64,
    debits: i64,
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    counts: Counts,
}

/// Polls `done` (a cheap query answering one boolean, given `bound`) every `every` until it
/// holds, and samples [`Counts`] every [`SAMPLE_EVERY`] polls and at the end for the
/// timeline (run it alongside the posting): the moment `done` first held, and the samples.
/// The full counts scan the tables, so they are taken rarely: the harness must not take the
/// CPU the system under test is measured on.
async fn watch(
    pg: &PgPool,
    every: Duration,
    done: &str,
    bound: i64,
) -> Result<(Instant, Vec<Sample>)> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poll: u32 = 0;
    loop {
        tick.tick().await;
        let finished: bool = sqlx::query_scalar(done).bind(bound).fetch_one(pg).await?;
        let at = Instant::now();
        if poll == 0 || finished {
            samples.push(Sample {
                at,
                counts: counts(pg).await?,
            });
        }
        if finished {
            return Ok((at, samples));
        }
        if at - started > DEADLINE {
            bail!(
                "no end after {DEADLINE:?}; last progress {:?}",
                counts(pg).await?
            );
        }
        poll = (poll + 1) % SAMPLE_EVERY;
    }
}

/// Polls of [`watch`] between two timeline samples.
const SAMPLE_EVERY: u32 = 10;

async fn counts(pg: &PgPool) -> Result<Counts> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM webhook_inbox) AS inbox,
                    (SELECT count(*) FROM webhook_inbox WHERE state = 'PROCESSED') AS processed,
                    (SELECT count(*) FROM message_status_events) AS stored,
                    (SELECT count(*) FROM message_status_events
                      WHERE applied_at IS NOT NULL) AS applied,
                    (SELECT count(*) FROM transactions WHERE kind = 'DEBIT_MESSAGE') AS debits",
    )
    .fetch_one(pg)
    .await?)
}

/// The samples where something moved, at most `rows` of them (evenly thinned), as ms from
/// the first POST.
fn print_timeline(phase: &str, samples: &[Sample], posted: &Posted, rows: usize) {
    let ms = |at: Instant| {
        if at >= posted.first_post {
            (at - posted.first_post).as_secs_f64() * 1000.0
        } else {
            -((posted.first_post - at).as_secs_f64() * 1000.0)
        }
    };
    let mut moved: Vec<&Sample> = Vec::new();
    for sample in samples {
        if moved.last().is_none_or(|last| last.counts != sample.counts) {
            moved.push(sample);
        }
    }
    let step = moved.len().div_ceil(rows.max(1)).max(1);
    println!(
        "  {phase} timeline (ms from the first POST; last ack at {:.0} ms):",
        ms(posted.last_ack)
    );
    println!(
        "  {:>8} {:>8} {:>9} {:>9} {:>9} {:>8}",
        "ms", "inbox", "processed", "stored", "applied", "debits"
    );
    for (k, sample) in moved.iter().enumerate() {
        if k % step != 0 && k + 1 != moved.len() {
            continue;
        }
        let c = sample.counts;
        println!(
            "  {:>8.0} {:>8} {:>9} {:>9} {:>9} {:>8}",
            ms(sample.at),
            c.inbox,
            c.processed,
            c.stored,
            c.applied,
            c.debits
        );
    }
}

/// A seeded vendor: its wallet's funds, one campaign with a hold, PENDING logs.
struct Tenant {
    vendor: VendorId,
    campaign: Uuid,
}

/// A vendor with a wallet credited [`CREDIT`] through the ledger, an approved MARKETING
/// template, a PROCESSING campaign holding [`HOLD_PER_MESSAGE`] per message, and one PENDING
/// outbound log in India per wamid, as dispatch leaves them.
async fn seed_tenant(pg: &PgPool, name: &str, wamids: &[String]) -> Result<Tenant> {
    let id: Uuid = sqlx::query_scalar("INSERT INTO vendors (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(pg)
        .await?;
    sqlx::query("INSERT INTO wallets (vendor_id) VALUES ($1)")
        .bind(id)
        .execute(pg)
        .await?;
    let vendor = VendorId::from_uuid(id);
    Ledger::new(pg.clone())
        .post_credit(
            vendor,
            Credit {
                kind: CreditKind::Recharge,
                amount: Decimal::from(CREDIT),
                reference: format!("recharge:bench:{id}"),
                payment_order_id: None,
                description: None,
                created_by: None,
            },
        )
        .await?;
    // Meta's template names are unique across the platform: one per vendor.
    let template: Uuid = sqlx::query_scalar(
        "INSERT INTO templates (vendor_id, name, language, category, components, meta_name,
                                status)
         VALUES ($1, 'bench_sale', 'en_US', 'MARKETING',
                 '[{\"type\": \"BODY\", \"text\": \"Our sale starts today!\"}]',
                 'bench_sale_' || replace($1::text, '-', ''), 'APPROVED')
         RETURNING id",
    )
    .bind(id)
    .fetch_one(pg)
    .await?;
    let count = i32::try_from(wamids.len())?;
    let campaign: Uuid = sqlx::query_scalar(
        "INSERT INTO campaigns (vendor_id, name, template_id, status, queued_at, started_at,
                                total_count, sent_count)
         VALUES ($1, 'Bench delivery', $2, 'PROCESSING', now(), now(), $3, $3)
         RETURNING id",
    )
    .bind(id)
    .bind(template)
    .bind(count)
    .fetch_one(pg)
    .await?;
    let mut conn = pg.acquire().await?;
    hold_in(
        &mut conn,
        vendor,
        HoldRequest {
            amount: Decimal::from(HOLD_PER_MESSAGE) * Decimal::from(count),
            reference: format!("hold:campaign:{campaign}"),
            campaign_id: Some(campaign),
        },
    )
    .await?;
    drop(conn);
    sqlx::query(
        "INSERT INTO message_logs (vendor_id, campaign_id, recipient_seq, direction, template_id,
                                   template_category, recipient, country, wa_message_id, status)
         SELECT $1, $2, w.seq, 'OUTBOUND', $3, 'MARKETING',
                '9198' || lpad((w.seq % 100000000)::text, 8, '0'), 'IN', w.wamid, 'PENDING'
           FROM unnest($4::text[]) WITH ORDINALITY AS w(wamid, seq)",
    )
    .bind(id)
    .bind(campaign)
    .bind(template)
    .bind(wamids)
    .execute(pg)
    .await?;
    sqlx::raw_sql("ANALYZE message_logs").execute(pg).await?;
    Ok(Tenant { vendor, campaign })
}

/// Each vendor's ledger once every status is applied: `expected` debits, one per charged
/// log (`debit:<wamid>`, distinct), balance = credit − Σ debits, the logs' costs and the
/// campaign's actual cost equal to Σ debits, and no ledger invariant violated.
async fn verify(pg: &PgPool, tenants: &[Tenant], expected: &[i64]) -> Result<()> {
    let ledger = Ledger::new(pg.clone());
    for (tenant, &expected) in tenants.iter().zip(expected) {
        let vendor = tenant.vendor.as_uuid();
        let (debits, distinct, matched, debited): (i64, i64, i64, Decimal) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT t.reference), count(m.id),
                    coalesce(sum(-t.amount), 0)
               FROM transactions t
               LEFT JOIN message_logs m
                 ON m.vendor_id = t.vendor_id AND t.reference = 'debit:' || m.wa_message_id
                AND m.ledger_transaction_id = t.id
              WHERE t.vendor_id = $1 AND t.kind = 'DEBIT_MESSAGE'",
        )
        .bind(vendor)
        .fetch_one(pg)
        .await?;
        ensure!(
            debits == expected && distinct == expected && matched == expected,
            "vendor {vendor}: {debits} debits ({distinct} distinct references, {matched} matching \
             their log), expected {expected}"
        );
        let (charged, cost, actual): (i64, Decimal, Decimal) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(cost), 0),
                    (SELECT actual_cost FROM campaigns WHERE id = $2)
               FROM message_logs WHERE vendor_id = $1 AND charged_at IS NOT NULL",
        )
        .bind(vendor)
        .bind(tenant.campaign)
        .fetch_one(pg)
        .await?;
        ensure!(
            charged == expected && cost == debited && actual == debited,
            "vendor {vendor}: {charged} logs charged for {cost}, campaign actual cost {actual}, \
             ledger debited {debited}"
        );
        let wallet = ledger.wallet(tenant.vendor).await?;
        ensure!(
            wallet.balance == Decimal::from(CREDIT) - debited,
            "vendor {vendor}: balance {} ≠ credit {CREDIT} − debits {debited}",
            wallet.balance
        );
    }
    let violations = invariant_violations(pg, None).await?;
    ensure!(
        violations.is_empty(),
        "ledger invariants violated: {violations:?}"
    );
    Ok(())
}

/// Every sustained log ended where its statuses lead ([`mix`]: DELIVERED, READ, SENT, READ).
async fn verify_statuses(pg: &PgPool, messages: usize) -> Result<()> {
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM message_logs GROUP BY status ORDER BY 1")
            .fetch_all(pg)
            .await?;
    let by = |kind: usize| (kind..messages).step_by(4).count() as i64;
    let mut expected = vec![
        ("DELIVERED".to_owned(), by(0)),
        ("READ".to_owned(), by(1) + by(3)),
        ("SENT".to_owned(), by(2)),
    ];
    expected.retain(|(_, n)| *n > 0);
    ensure!(
        counts == expected,
        "message logs ended {counts:?}, expected {expected:?}"
    );
    Ok(())
}
