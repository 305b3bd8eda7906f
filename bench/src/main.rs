//! Benchmarks against the real Postgres and Redis on this machine.
//!
//! ```text
//! cargo run --release -p bench -- outbox [--events N] [--relays K] [--runs R]
//! cargo run --release -p bench -- ledger [--debits N] [--callers C] [--runs R]
//! cargo run --release -p bench -- idle-memory [--settle-secs S]
//! cargo run --release -p bench -- auth [--seconds S] [--connections C]
//! cargo run --release -p bench -- import [--rows N] [--runs R] [--bare-only]
//! cargo run --release -p bench -- webhooks [--seconds S] [--connections C] [--runs R] [--bodies N] [--process-concurrency P (0 = intake only)]
//! cargo run --release -p bench -- quote [--contacts N] [--runs R]
//! cargo run --release -p bench -- campaign [--sizes 10000,100000] [--cap-recipients N] [--cap R] [--runs R] [--launch-recipients N] [--launch-runs R]
//! cargo run --release -p bench -- delivery [--burst N] [--burst-concurrency C] [--statuses S] [--vendors V] [--posters P] [--rate STATUSES_PER_S (0 = flood)] [--process-concurrency K] [--runs R]
//! cargo run --release -p bench -- all
//! ```
//! Each scenario prints its figures (median of the runs) and the machine's own reference.

mod auth;
mod campaign;
mod delivery;
mod idle_memory;
mod import;
mod ledger;
mod outbox;
mod quote;
mod stores;
mod webhooks;

use anyhow::{bail, Result};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenario = args.first().map(String::as_str).unwrap_or("all");
    match scenario {
        "outbox" => {
            outbox::run(
                arg(&args, "--events", 200_000),
                arg(&args, "--relays", 1),
                arg(&args, "--runs", 3),
            )
            .await
        }
        "ledger" => {
            ledger::run(
                arg(&args, "--debits", 20_000),
                arg(&args, "--callers", 16),
                arg(&args, "--runs", 3),
            )
            .await
        }
        "idle-memory" => idle_memory::run(arg(&args, "--settle-secs", 10)).await,
        "auth" => auth::run(arg(&args, "--seconds", 10), arg(&args, "--connections", 32)).await,
        "import" => {
            import::run(
                arg(&args, "--rows", 1_000_000),
                arg(&args, "--runs", 1),
                args.iter().any(|a| a == "--bare-only"),
            )
            .await
        }
        "webhooks" => {
            webhooks::run(
                arg(&args, "--seconds", 10),
                arg(&args, "--connections", 128),
                arg(&args, "--runs", 3),
                arg(&args, "--bodies", 600_000),
                arg(&args, "--process-concurrency", 4),
            )
            .await
        }
        "quote" => quote::run(arg(&args, "--contacts", 100_000), arg(&args, "--runs", 15)).await,
        "campaign" => {
            campaign::run(
                &campaign::sizes(&args),
                arg(&args, "--cap-recipients", 1_200),
                arg(&args, "--cap", 80),
                arg(&args, "--runs", 3),
                arg(&args, "--launch-recipients", 100_000),
                arg(&args, "--launch-runs", 10),
            )
            .await
        }
        "delivery" => delivery::run(&delivery::Options::from_args(&args)).await,
        "all" => {
            outbox::run(200_000, 1, 3).await?;
            outbox::run(200_000, 2, 3).await?;
            idle_memory::run(10).await?;
            auth::run(10, 32).await?;
            import::run(1_000_000, 1, false).await?;
            webhooks::run(10, 128, 3, 600_000, 0).await?;
            webhooks::run(10, 128, 3, 600_000, 4).await?;
            ledger::run(20_000, 16, 3).await?;
            quote::run(100_000, 15).await?;
            campaign::run(&[10_000, 100_000], 1_200, 80, 3, 100_000, 10).await?;
            delivery::run(&delivery::Options::default()).await
        }
        other => bail!(
            "unknown scenario {other:?}; try outbox, ledger, idle-memory, auth, import, webhooks, quote, campaign, delivery or all"
        ),
    }
}
