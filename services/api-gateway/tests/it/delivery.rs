//! Delivery statuses and charging end to end: a campaign launched over HTTP, sent by the
//! worker-pool to the simulator, whose status webhooks — every one posted twice, up to 1,000
//! statuses per POST, shuffled — the webhook-worker stores, applies and charges; the
//! worker-pool then settles the campaign. The books must come out exact, also when the
//! worker-pool and the webhook-worker are killed (kill -9) mid-flood and Redis restarts empty.

use std::path::PathBuf;
use std::time::Duration;

use kloyst_core::VendorId;
use kloyst_testkit::{eventually, free_port, signal, wait_until_ready, TcpProxy};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{token, Api};
use crate::fixtures::{
    dec, fund, list_of, load_sample, sim_behaviour, template, vendor_of, Member, Pipeline,
};

/// The campaign as the books see it once settled.
#[derive(Debug, sqlx::FromRow)]
struct Settled {
    sent_count: i32,
    unknown_count: i32,
    delivered_count: i32,
    read_count: i32,
    failed_count: i32,
    actual_cost: Decimal,
    held: Decimal,
    balance: Decimal,
}

/// A funded vendor with an approved template and a list of `recipients` Indian contacts.
struct Flood {
    token: String,
    vendor: VendorId,
    template: String,
    list: String,
    recharged: Decimal,
}

async fn flood_setup(api: &Api, recipients: usize) -> Flood {
    load_sample(api).await;
    let token = token(&api.onboard("owner@acme.test", "Acme").await);
    let vendor = vendor_of(api, "owner@acme.test").await;
    let template = template(api, &token, "flood", "APPROVED").await;
    let members: Vec<Member> = vec![(Some("IN"), false); recipients];
    let list = list_of(api, &token, vendor, "Flood", "91", &members).await;
    let recharged = Decimal::from(5_000);
    fund(api, vendor, recharged).await;
    Flood {
        token,
        vendor,
        template,
        list,
        recharged,
    }
}

/// Every status webhook posted twice, up to 1,000 statuses per POST, shuffled; some messages
/// fail, some are read without a `delivered`.
fn flood_behaviour() -> meta_sim::Behaviour {
    meta_sim::Behaviour {
        rate_per_second: 0,
        duplicate_rate: 1.0,
        reorder: true,
        batch_max: 1000,
        batch_window_ms: 300,
        failed_rate: 0.1,
        read_rate: 0.5,
        read_without_delivered_rate: 0.2,
        status_delay_ms: 10,
        webhook_retry_base_ms: 50,
        webhook_retry_max_ms: 500,
        ..sim_behaviour()
    }
}

/// Launches the flood's campaign; returns its id and the unit price it was quoted.
async fn launch(api: &Api, flood: &Flood, recipients: usize) -> (Uuid, Decimal) {
    let launched = api
        .post(
            "/v1/campaigns/launch",
            Some(&flood.token),
            json!({ "name": "Flood", "template_id": flood.template, "list_id": flood.list,
                    "parameters": { "1": { "literal": "there" } } }),
        )
        .await;
    assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
    let id = Uuid::parse_str(launched.body["id"].as_str().unwrap()).unwrap();
    let unit = dec(&launched.body["quote"]["markets"][0]["unit_price"]);
    assert_eq!(
        dec(&launched.body["quote"]["total"]),
        unit * Decimal::from(recipients as u64)
    );
    (id, unit)
}

async fn books(api: &Api, id: Uuid) -> Settled {
    sqlx::query_as(
        "SELECT c.sent_count, c.unknown_count, c.delivered_count, c.read_count, c.failed_count,
                c.actual_cost, w.held, w.balance
           FROM campaigns c JOIN wallets w ON w.vendor_id = c.vendor_id
          WHERE c.id = $1",
    )
    .bind(id)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap()
}

/// Waits until the campaign is settled, every webhook acknowledged and applied, and the
/// campaign's sends are the simulator's; returns the simulator's stats then.
async fn wait_until_settled(api: &Api, id: Uuid, sim_stats: impl AsyncFn() -> Value) -> Value {
    let done = eventually(Duration::from_secs(180), || async {
        let stats = sim_stats().await;
        let (settled, unapplied, sent): (bool, i64, i32) = sqlx::query_as(
            "SELECT c.settled_at IS NOT NULL,
                    (SELECT count(*) FROM message_status_events WHERE applied_at IS NULL),
                    c.sent_count
               FROM campaigns c WHERE c.id = $1",
        )
        .bind(id)
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
        let quiet = stats["webhooks"]["pending"] == 0
            && stats["sends_accepted"].as_u64() == u64::try_from(sent).ok();
        (settled && unapplied == 0 && quiet).then_some(stats)
    })
    .await;
    match done {
        Some(stats) => stats,
        None => panic!(
            "not settled: {:?}, simulator {}",
            books(api, id).await,
            sim_stats().await
        ),
    }
}

/// The end state every run must reach: counters equal to the simulator's record, one debit
/// per billable message at its price, the hold released, the ledger exact.
async fn assert_books_exact(api: &Api, flood: &Flood, id: Uuid, unit: Decimal, stats: &Value) {
    let outcomes = &stats["outcomes"];
    let count = |key: &str| i32::try_from(outcomes[key].as_u64().unwrap()).unwrap();
    let billable = count("billable_delivered");
    assert!(billable > 0 && count("failed") > 0, "{stats}");
    let books = books(api, id).await;
    let expected_cost = unit * Decimal::from(billable);
    assert_eq!(
        i64::from(books.sent_count),
        stats["sends_accepted"].as_i64().unwrap(),
        "{books:?}"
    );
    assert_eq!(
        (books.delivered_count, books.read_count, books.failed_count),
        (count("delivered"), count("read"), count("failed")),
        "the counters are the simulator's record: {books:?} vs {outcomes}"
    );
    assert_eq!(books.actual_cost, expected_cost, "{books:?}");
    assert_eq!(
        books.held,
        Decimal::ZERO,
        "the hold's remainder is released"
    );
    assert_eq!(books.balance, flood.recharged - expected_cost, "{books:?}");

    // One ledger debit per billable message, each the unit price, referenced by its wamid.
    let (debits, debited, distinct): (i64, Option<Decimal>, i64) = sqlx::query_as(
        "SELECT count(*), sum(-amount), count(DISTINCT reference) FROM transactions
          WHERE vendor_id = $1 AND kind = 'DEBIT_MESSAGE'",
    )
    .bind(flood.vendor.as_uuid())
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(
        (debits, distinct),
        (i64::from(billable), i64::from(billable))
    );
    assert_eq!(debited, Some(expected_cost));
    let violations = kloyst_billing::invariant_violations(&api.stores.pg, None)
        .await
        .unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    // Nothing left parked or dead-lettered: every status found its message.
    let (unapplied, dead): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE applied_at IS NULL), count(*) FILTER (WHERE dead_at IS NOT NULL)
           FROM message_status_events",
    )
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!((unapplied, dead), (0, 0));
}

const FLOOD: usize = 400;

#[tokio::test]
async fn a_flood_of_duplicated_shuffled_statuses_leaves_the_books_exact() {
    let api = Api::start().await;
    let flood = flood_setup(&api, FLOOD).await;
    let pipeline = Pipeline::with_webhooks(&api, 0, flood_behaviour(), |env| {
        env.with("CAMPAIGN_SETTLE_INTERVAL", "300ms")
            .with("STATUS_APPLY_POLL", "100ms")
    })
    .await;
    let (id, unit) = launch(&api, &flood, FLOOD).await;

    let stats = wait_until_settled(&api, id, async || pipeline.stats().await).await;
    assert_books_exact(&api, &flood, id, unit, &stats).await;
    let settled = books(&api, id).await;
    assert_eq!(
        (settled.sent_count, settled.unknown_count),
        (FLOOD as i32, 0)
    );
    let shown: Value = api
        .get(&format!("/v1/campaigns/{id}"), &flood.token)
        .await
        .body;
    assert_eq!(
        shown["counters"]["delivered"], settled.delivered_count,
        "{shown}"
    );
    pipeline.stop().await;
}

const FAULT_FLOOD: usize = 1500;
const APP_SECRET: &str = "test-meta-app-secret";

/// A service binary of this workspace, built beside this test (`make test` builds every
/// binary; `cargo test -p api-gateway` alone does not — build the workspace first).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .unwrap();
    assert!(
        path.exists(),
        "{} is not built: run the workspace's test command (make test)",
        path.display()
    );
    path
}

/// A webhook-worker or worker-pool process on the test's database and, through `redis`, its
/// Redis; restartable on the same port after a kill -9. Its log goes to a file in the temp
/// directory, shown when the test fails.
struct Process {
    path: PathBuf,
    vars: Vec<(&'static str, String)>,
    url: String,
    log: PathBuf,
    child: tokio::process::Child,
}

impl Process {
    async fn start(path: PathBuf, vars: Vec<(&'static str, String)>, port: u16) -> Self {
        let url = format!("http://127.0.0.1:{port}");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let log = std::env::temp_dir().join(format!("kloyst-{name}-{port}.log"));
        let child = Self::spawn(&path, &vars, &log);
        assert!(wait_until_ready(&format!("{url}/readyz"), Duration::from_secs(30)).await);
        Self {
            path,
            vars,
            url,
            log,
            child,
        }
    }

    fn spawn(
        path: &PathBuf,
        vars: &[(&'static str, String)],
        log: &PathBuf,
    ) -> tokio::process::Child {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = tokio::process::Command::new(path);
        command
            .current_dir(std::env::temp_dir())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .kill_on_drop(true);
        for (key, value) in vars {
            command.env(key, value);
        }
        command.spawn().unwrap()
    }

    /// kill -9, a pause, and the same binary started again with the same configuration.
    async fn kill_and_restart(&mut self) {
        signal(&self.child, "KILL").await;
        let _ = self.child.wait().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.child = Self::spawn(&self.path, &self.vars, &self.log);
        assert!(wait_until_ready(&format!("{}/readyz", self.url), Duration::from_secs(30)).await);
    }

    /// The last lines the process logged.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// What both binaries need, as the test stores' configuration gives it to in-process services.
fn common_vars(api: &Api, redis_url: &str, sim_base: &str) -> Vec<(&'static str, String)> {
    let stores = &api.stores;
    vec![
        ("DATABASE_URL", stores.database_url.clone()),
        ("DATABASE_MAX_CONNECTIONS", "8".to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("REDIS_TIMEOUT", "1s".to_owned()),
        ("REDIS_KEY_PREFIX", stores.redis_prefix.clone()),
        (
            "JWT_SECRET",
            "test-jwt-secret-that-is-long-enough-0123456789".to_owned(),
        ),
        (
            "DATA_ENCRYPTION_KEY",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".to_owned(),
        ),
        ("META_API_BASE", sim_base.to_owned()),
        ("META_ACCESS_TOKEN", "test-token".to_owned()),
        ("META_WABA_ID", "100000000000001".to_owned()),
        ("META_PHONE_NUMBER_ID", "100000000000002".to_owned()),
        ("META_APP_SECRET", APP_SECRET.to_owned()),
        ("META_VERIFY_TOKEN", "test-verify-token".to_owned()),
        (
            "RAZORPAY_WEBHOOK_SECRET",
            "test-razorpay-webhook-secret".to_owned(),
        ),
        ("RUST_LOG", "warn".to_owned()),
    ]
}

/// Issue 8's fault test: during the flood the worker-pool and the webhook-worker are each
/// killed with SIGKILL and restarted, and Redis goes away and comes back empty (a restart
/// without persistence, as it runs here: its streams, consumer groups and limiter keys are
/// gone) → the same exact end state: nobody sent twice, nothing lost, nothing charged twice.
#[tokio::test]
async fn kill_9_of_both_workers_and_a_redis_restart_mid_flood_change_nothing() {
    let worker_pool_bin = binary("worker-pool");
    let webhook_worker_bin = binary("webhook-worker");
    let api = Api::start().await;
    let flood = flood_setup(&api, FAULT_FLOOD).await;
    let redis = TcpProxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let redis_url = kloyst_testkit::TestStores::redis_url_via(redis.addr());

    // The simulator posts to the webhook-worker's port, which outlives its processes.
    let webhook_port = free_port();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let settings = meta_sim::SimSettings {
        access_token: "test-token".to_owned(),
        app_secret: APP_SECRET.to_owned(),
        waba_id: "100000000000001".to_owned(),
        phone_number_id: "100000000000002".to_owned(),
        display_phone_number: "15550001234".to_owned(),
        webhook_url: Some(format!("http://127.0.0.1:{webhook_port}/webhook/meta")),
        behaviour: flood_behaviour(),
    };
    let sim = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { meta_sim::serve(settings, listener, shutdown).await.unwrap() }
    });
    let sim_stats = async || -> Value {
        reqwest::get(format!("{sim_base}/_sim/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };

    let mut webhook_vars = common_vars(&api, &redis_url, &sim_base);
    webhook_vars.extend([
        ("WEBHOOK_PORT", webhook_port.to_string()),
        ("WEBHOOK_POLL_INTERVAL", "100ms".to_owned()),
        // A row claimed by the killed process is due again soon after.
        ("WEBHOOK_PROCESS_LEASE", "2s".to_owned()),
        ("STATUS_APPLY_POLL", "100ms".to_owned()),
    ]);
    let mut webhooks = Process::start(webhook_worker_bin, webhook_vars, webhook_port).await;
    let worker_port = free_port();
    let mut worker_vars = common_vars(&api, &redis_url, &sim_base);
    worker_vars.extend([
        ("METRICS_PORT", worker_port.to_string()),
        // About five seconds of sending, so the faults land mid-campaign; claims of 100, so
        // a kill leaves at most a few hundred recipients UNKNOWN.
        ("META_SEND_RATE", "300".to_owned()),
        ("CAMPAIGN_BATCH", "100".to_owned()),
        ("CAMPAIGN_SENDING_LEASE", "3s".to_owned()),
        ("CAMPAIGN_RECONCILE_INTERVAL", "1s".to_owned()),
        ("CAMPAIGN_WATCHDOG", "4s".to_owned()),
        ("JOB_VISIBILITY_TIMEOUT", "3s".to_owned()),
        ("CAMPAIGN_SETTLE_INTERVAL", "500ms".to_owned()),
    ]);
    let mut worker = Process::start(worker_pool_bin, worker_vars, worker_port).await;
    let relay_env = api
        .stores
        .env_with_urls(&api.stores.database_url, &redis_url);
    let relay =
        kloyst_testkit::RunningService::start::<outbox_relay::OutboxRelay>(&relay_env).await;

    let (id, unit) = launch(&api, &flood, FAULT_FLOOD).await;
    // Each fault once the simulator has accepted `n` sends, or once dispatch is over (a kill
    // leaves the recipients its worker had claimed UNKNOWN, so fewer may ever be accepted).
    let progressed = async |n: u64, worker: &Process, webhooks: &Process| {
        let reached = eventually(Duration::from_secs(60), || async {
            let accepted = sim_stats().await["sends_accepted"].as_u64().unwrap_or(0);
            let status: String = sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1")
                .bind(id)
                .fetch_one(&api.stores.pg)
                .await
                .unwrap();
            (accepted >= n || status == "COMPLETED").then_some(())
        })
        .await;
        if reached.is_none() {
            panic!(
                "{n} sends not accepted: {:?}\nworker-pool:\n{}\nwebhook-worker:\n{}",
                books(&api, id).await,
                worker.log_tail(),
                webhooks.log_tail()
            );
        }
    };
    progressed(300, &worker, &webhooks).await;
    worker.kill_and_restart().await;
    progressed(600, &worker, &webhooks).await;
    webhooks.kill_and_restart().await;
    progressed(700, &worker, &webhooks).await;
    // Redis stops, and starts again empty.
    redis.cut().await;
    api.stores.cleanup_redis().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restore();

    let stats = wait_until_settled(&api, id, &sim_stats).await;
    assert_books_exact(&api, &flood, id, unit, &stats).await;
    // Nobody twice in Meta's record; whoever Meta never saw is reported UNKNOWN, not resent.
    let sends: Vec<Value> = reqwest::get(format!("{sim_base}/_sim/messages?limit=100000"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut numbers: Vec<&str> = sends.iter().map(|s| s["to"].as_str().unwrap()).collect();
    let total = numbers.len();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), total, "a recipient was sent twice");
    let settled = books(&api, id).await;
    assert_eq!(
        settled.sent_count + settled.unknown_count,
        FAULT_FLOOD as i32,
        "{settled:?}"
    );
    println!(
        "fault flood: {total} sent once, {} unknown, {} billable charged",
        settled.unknown_count, stats["outcomes"]["billable_delivered"]
    );

    relay.stop().await.unwrap();
    shutdown.cancel();
    sim.await.unwrap();
}
