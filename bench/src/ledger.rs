//! Hot-wallet debits: N debits with distinct references from C concurrent callers on one
//! wallet, debits/s.
//!
//! (1) The naive path, as plain SQL: one `BEGIN; SELECT … FOR UPDATE; INSERT; UPDATE;
//! COMMIT` per debit — every caller queues on the wallet row lock, one commit per debit.
//! (2) kloyst-billing's `DebitBatcher`: what queued for the wallet while the previous batch
//! committed goes in the next (one lock, one multi-row insert, one update per batch).
//! Each run uses fresh wallets and checks the end state exactly: balance = credit − Σ
//! debits, N + 1 ledger rows, no invariant violated.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use kloyst_billing::{
    invariant_violations, BatcherSettings, Credit, CreditKind, Debit, DebitBatcher, Ledger,
};
use kloyst_core::VendorId;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{median, stores};

const CREDIT: i64 = 1_000_000;
/// 0.7851: four decimal places, like a real per-message price.
fn debit_amount() -> Decimal {
    Decimal::new(7851, 4)
}

pub async fn run(debits: usize, callers: usize, runs: usize) -> Result<()> {
    let stores = stores::fresh("kloyst_bench_ledger").await?;
    let ledger = Ledger::new(stores.pg.clone());
    let (mut naive_rates, mut batched_rates) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let vendor = hot_wallet(&ledger).await?;
        let started = Instant::now();
        naive(&stores.pg, vendor, debits, callers).await?;
        let naive_rate = debits as f64 / started.elapsed().as_secs_f64();
        verify(&ledger, vendor, debits).await?;

        let vendor = hot_wallet(&ledger).await?;
        let started = Instant::now();
        batched(&stores.pg, vendor, debits, callers).await?;
        let batched_rate = debits as f64 / started.elapsed().as_secs_f64();
        verify(&ledger, vendor, debits).await?;

        println!(
            "ledger run {run}: naive {naive_rate:.0} debits/s, batcher {batched_rate:.0} debits/s ({:.1}x); end state exact",
            batched_rate / naive_rate
        );
        naive_rates.push(naive_rate);
        batched_rates.push(batched_rate);
    }
    let (naive_rate, batched_rate) = (median(naive_rates), median(batched_rates));
    println!(
        "ledger, median of {runs} ({debits} debits, {callers} callers, one wallet): naive {naive_rate:.0} debits/s; DebitBatcher {batched_rate:.0} debits/s (target > 20000); ratio {:.1}x (target >= 10x)",
        batched_rate / naive_rate
    );
    Ok(())
}

/// A new vendor whose wallet holds a big credit.
async fn hot_wallet(ledger: &Ledger) -> Result<VendorId> {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Bench hot wallet') RETURNING id")
            .fetch_one(&ledger.pg)
            .await?;
    sqlx::query("INSERT INTO wallets (vendor_id) VALUES ($1)")
        .bind(vendor)
        .execute(&ledger.pg)
        .await?;
    let vendor = VendorId::from_uuid(vendor);
    ledger
        .post_credit(
            vendor,
            Credit {
                kind: CreditKind::Recharge,
                amount: Decimal::from(CREDIT),
                reference: format!("recharge:bench:{vendor}"),
                payment_order_id: None,
                description: None,
                created_by: None,
            },
        )
        .await?;
    Ok(vendor)
}

/// The references caller `caller` posts.
fn references(vendor: VendorId, debits: usize, callers: usize, caller: usize) -> Vec<String> {
    (caller..debits)
        .step_by(callers)
        .map(|n| format!("debit:bench:{vendor}:{n}"))
        .collect()
}

async fn naive(pg: &PgPool, vendor: VendorId, debits: usize, callers: usize) -> Result<()> {
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let pg = pg.clone();
            let references = references(vendor, debits, callers, caller);
            tokio::spawn(async move {
                for reference in references {
                    naive_debit(&pg, vendor, &reference).await?;
                }
                Ok::<(), anyhow::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn naive_debit(pg: &PgPool, vendor: VendorId, reference: &str) -> Result<()> {
    let amount = debit_amount();
    let mut tx = pg.begin().await?;
    let (wallet, balance, held): (Uuid, Decimal, Decimal) =
        sqlx::query_as("SELECT id, balance, held FROM wallets WHERE vendor_id = $1 FOR UPDATE")
            .bind(vendor.as_uuid())
            .fetch_one(&mut *tx)
            .await?;
    let balance_after = balance - amount;
    if balance_after - held < Decimal::ZERO {
        bail!("the bench wallet ran dry");
    }
    sqlx::query(
        "INSERT INTO transactions (wallet_id, vendor_id, kind, amount, balance_after, held_after,
             reference, metadata)
         VALUES ($1, $2, 'DEBIT_MESSAGE', $3, $4, $5, $6, '{\"category\": \"marketing\"}')",
    )
    .bind(wallet)
    .bind(vendor.as_uuid())
    .bind(-amount)
    .bind(balance_after)
    .bind(held)
    .bind(reference)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE wallets SET balance = $2 WHERE id = $1")
        .bind(wallet)
        .bind(balance_after)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn batched(pg: &PgPool, vendor: VendorId, debits: usize, callers: usize) -> Result<()> {
    let (batcher, task) = DebitBatcher::start(pg.clone(), BatcherSettings::default());
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let batcher = batcher.clone();
            let references = references(vendor, debits, callers, caller);
            tokio::spawn(async move {
                for reference in references {
                    let debit = Debit {
                        reference,
                        amount: debit_amount(),
                        hold_id: None,
                        campaign_id: None,
                        wa_message_id: None,
                        metadata: serde_json::json!({ "category": "marketing" }),
                    };
                    let posted = batcher.debit(vendor, debit).await?;
                    if posted.replayed {
                        bail!("a distinct reference was replayed");
                    }
                }
                Ok::<(), anyhow::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    drop(batcher);
    task.await.context("the batcher stopped")?;
    Ok(())
}

/// balance = credit − Σ debits, N + 1 ledger rows, no invariant violated.
async fn verify(ledger: &Ledger, vendor: VendorId, debits: usize) -> Result<()> {
    let wallet = ledger.wallet(vendor).await?;
    let expected = Decimal::from(CREDIT) - debit_amount() * Decimal::from(debits as u64);
    if wallet.balance != expected || wallet.held != Decimal::ZERO {
        bail!(
            "wallet {} is {} (held {}), expected {expected}",
            wallet.id,
            wallet.balance,
            wallet.held
        );
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM transactions WHERE wallet_id = $1")
        .bind(wallet.id)
        .fetch_one(&ledger.pg)
        .await?;
    if rows != debits as i64 + 1 {
        bail!("{rows} ledger rows, expected {}", debits + 1);
    }
    let violations = invariant_violations(&ledger.pg, Some(wallet.id)).await?;
    if !violations.is_empty() {
        bail!("invariants violated: {violations:?}");
    }
    Ok(())
}
