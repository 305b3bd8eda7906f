//! The books reconciliation: recomputes wallets, campaigns and charges from their sources and
//! REPORTS every difference (it never corrects anything). Each run is stored in
//! `books_reconciliations`; a warning is logged per difference.
//!
//! - wallets: the ledger invariants (`wallet_invariant_violations`: balance and held against
//!   the ledger and the active holds);
//! - campaigns: `actual_cost` against the sum of its messages' costs; the delivered / read /
//!   failed counters against its message logs (informational: the counters are kept by the
//!   status applier and dispatch, and a late status may be counted differently);
//! - messages: a charged message has its ledger debit `debit:<wamid>` of exactly −cost; every
//!   ledger debit belongs to a charged message; messages flagged UNPRICED / CHARGE_REFUSED.
//!
//! Everything is read in one REPEATABLE READ snapshot, so a run sees no half-applied status.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::settle::SettlementError;

/// One books reconciliation at a time, across every process (`pg_try_advisory_xact_lock`).
const BOOKS_LOCK_KEY: i64 = 0x6b6c_6f79_626f_6f6b; // "kloybook"

/// Rows listed per check; more are counted in `truncated`, not listed.
const LIST_LIMIT: i64 = 1000;

/// What kind of difference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// A ledger invariant of a wallet (balance, held, a hold's figures).
    WalletInvariant,
    /// `campaigns.actual_cost` ≠ Σ `message_logs.cost`.
    CampaignActualCost,
    /// delivered / read / failed counter ≠ its count of message logs (informational).
    CampaignCounter,
    /// A charged message without its ledger debit `debit:<wamid>`.
    ChargeWithoutDebit,
    /// A charged message whose ledger debit is not −cost (or not the row it points to).
    ChargeAmountDiffers,
    /// A ledger debit `debit:<wamid>` without a charged message.
    DebitWithoutCharge,
    /// A message the applier could not price.
    MessageUnpriced,
    /// A message whose charge the wallet refused.
    MessageChargeRefused,
}

/// One difference, with the ids to find it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub kind: DifferenceKind,
    /// Reported, but not counted in `difference_count`.
    pub informational: bool,
    /// What was compared, e.g. the invariant or the counter.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_log_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wa_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<i64>,
    /// The value recomputed from the source (ledger, message logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Decimal>,
    /// The value stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Decimal>,
}

impl Difference {
    fn new(kind: DifferenceKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            informational: kind == DifferenceKind::CampaignCounter,
            detail: detail.into(),
            vendor_id: None,
            wallet_id: None,
            campaign_id: None,
            message_log_id: None,
            wa_message_id: None,
            transaction_id: None,
            expected: None,
            actual: None,
        }
    }
}

/// One run, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BooksReport {
    /// `books_reconciliations.id`.
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub wallets_checked: i64,
    pub campaigns_checked: i64,
    /// Charged or flagged messages checked.
    pub messages_checked: i64,
    /// Differences that are not informational.
    pub difference_count: usize,
    pub differences: Vec<Difference>,
    /// Checks that found more than the listed rows (the listing stops at 1000 per check).
    pub truncated: Vec<DifferenceKind>,
}

/// Runs the reconciliation now and stores it. `AlreadyRunning` when another run holds the
/// lock.
pub async fn reconcile_books(pg: &PgPool) -> Result<BooksReport, SettlementError> {
    run(pg, None).await?.ok_or(SettlementError::AlreadyRunning)
}

/// Runs the reconciliation unless one started less than `interval` ago (any process's), or
/// one is running: the worker-pool's periodic run, so that N copies reconcile once.
pub async fn reconcile_books_if_due(
    pg: &PgPool,
    interval: Duration,
) -> Result<Option<BooksReport>, SettlementError> {
    match run(pg, Some(interval)).await {
        Err(SettlementError::AlreadyRunning) => Ok(None),
        other => other,
    }
}

async fn run(
    pg: &PgPool,
    due_after: Option<Duration>,
) -> Result<Option<BooksReport>, SettlementError> {
    let mut tx = pg.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(BOOKS_LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        tx.rollback().await?;
        return Err(SettlementError::AlreadyRunning);
    }
    if let Some(interval) = due_after {
        let ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let recent: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM books_reconciliations \
                            WHERE started_at > now() - $1 * interval '1 millisecond')",
        )
        .bind(ms)
        .fetch_one(&mut *tx)
        .await?;
        if recent {
            // Rolled back here, not on drop: the lock must be gone when this returns.
            tx.rollback().await?;
            return Ok(None);
        }
    }
    let started_at = Utc::now();
    let mut found = Found::default();
    let wallets_checked = wallets(&mut tx, &mut found).await?;
    let campaigns_checked = campaigns(&mut tx, &mut found).await?;
    let messages_checked = messages(&mut tx, &mut found).await?;
    let finished_at = Utc::now();
    let Found {
        differences,
        truncated,
    } = found;
    let difference_count = differences.iter().filter(|d| !d.informational).count();
    let stored = serde_json::to_value(&differences).unwrap_or_default();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO books_reconciliations (started_at, finished_at, wallets_checked, \
             campaigns_checked, messages_checked, differences, difference_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(started_at)
    .bind(finished_at)
    .bind(wallets_checked)
    .bind(campaigns_checked)
    .bind(messages_checked)
    .bind(stored)
    .bind(i32::try_from(difference_count).unwrap_or(i32::MAX))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;

    for d in &differences {
        tracing::warn!(
            books.run = id, kind = ?d.kind, informational = d.informational, detail = %d.detail,
            vendor.id = ?d.vendor_id, wallet.id = ?d.wallet_id, campaign.id = ?d.campaign_id,
            message_log.id = ?d.message_log_id, wamid = ?d.wa_message_id,
            transaction.id = ?d.transaction_id, expected = ?d.expected, actual = ?d.actual,
            "books difference"
        );
    }
    metrics::gauge!("books_differences").set(difference_count as f64);
    tracing::info!(
        books.run = id,
        wallets_checked,
        campaigns_checked,
        messages_checked,
        difference_count,
        listed = differences.len(),
        "books reconciled"
    );
    Ok(Some(BooksReport {
        id,
        started_at,
        finished_at,
        wallets_checked,
        campaigns_checked,
        messages_checked,
        difference_count,
        differences,
        truncated,
    }))
}

#[derive(Default)]
struct Found {
    differences: Vec<Difference>,
    truncated: Vec<DifferenceKind>,
}

impl Found {
    /// Adds the rows of one check (at most `LIST_LIMIT + 1` fetched).
    fn extend(&mut self, kind: DifferenceKind, rows: Vec<Difference>) {
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) > LIST_LIMIT {
            self.truncated.push(kind);
        }
        let limit = usize::try_from(LIST_LIMIT).unwrap_or(usize::MAX);
        self.differences.extend(rows.into_iter().take(limit));
    }
}

async fn wallets(conn: &mut PgConnection, found: &mut Found) -> Result<i64, SettlementError> {
    let checked: i64 = sqlx::query_scalar("SELECT count(*) FROM wallets")
        .fetch_one(&mut *conn)
        .await?;
    let violations = kloyst_billing::invariant_violations(&mut *conn, None).await?;
    let rows = violations
        .into_iter()
        .map(|v| Difference {
            vendor_id: Some(v.vendor_id),
            wallet_id: Some(v.wallet_id),
            expected: v.expected,
            actual: v.actual,
            ..Difference::new(DifferenceKind::WalletInvariant, v.invariant)
        })
        .collect();
    found.extend(DifferenceKind::WalletInvariant, rows);
    Ok(checked)
}

/// campaign, vendor, stored actual_cost, Σ cost, delivered, read, failed (stored, counted)
type CampaignRow = (Uuid, Uuid, Decimal, Decimal, i32, i64, i32, i64, i32, i64);

async fn campaigns(conn: &mut PgConnection, found: &mut Found) -> Result<i64, SettlementError> {
    let checked: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&mut *conn)
        .await?;
    // Dispatch counts a recipient failed at send time once, with its FAILED log; the applier
    // counts a log that turns FAILED later: failed_count = FAILED logs.
    let rows: Vec<CampaignRow> = sqlx::query_as(
        "WITH l AS ( \
             SELECT campaign_id, coalesce(sum(cost), 0) AS cost, \
                    count(*) FILTER (WHERE status IN ('DELIVERED', 'READ')) AS delivered, \
                    count(*) FILTER (WHERE status = 'READ') AS read, \
                    count(*) FILTER (WHERE status = 'FAILED') AS failed \
             FROM message_logs WHERE campaign_id IS NOT NULL AND direction = 'OUTBOUND' \
             GROUP BY campaign_id) \
         SELECT c.id, c.vendor_id, c.actual_cost, coalesce(l.cost, 0), \
                c.delivered_count, coalesce(l.delivered, 0), c.read_count, coalesce(l.read, 0), \
                c.failed_count, coalesce(l.failed, 0) \
         FROM campaigns c LEFT JOIN l ON l.campaign_id = c.id \
         WHERE c.actual_cost <> coalesce(l.cost, 0) \
            OR c.delivered_count <> coalesce(l.delivered, 0) \
            OR c.read_count <> coalesce(l.read, 0) \
            OR c.failed_count <> coalesce(l.failed, 0) \
         ORDER BY c.id LIMIT $1",
    )
    .bind(LIST_LIMIT + 1)
    .fetch_all(&mut *conn)
    .await?;
    let mut costs = Vec::new();
    let mut counters = Vec::new();
    for (
        campaign,
        vendor,
        actual,
        cost,
        delivered,
        delivered_logs,
        read,
        read_logs,
        failed,
        failed_logs,
    ) in rows
    {
        let of = |kind, detail: &str, expected: Decimal, actual: Decimal| Difference {
            vendor_id: Some(vendor),
            campaign_id: Some(campaign),
            expected: Some(expected),
            actual: Some(actual),
            ..Difference::new(kind, detail)
        };
        if actual != cost {
            costs.push(of(
                DifferenceKind::CampaignActualCost,
                "actual_cost = sum(message_logs.cost)",
                cost,
                actual,
            ));
        }
        for (detail, stored, counted) in [
            (
                "delivered_count = logs DELIVERED or READ",
                delivered,
                delivered_logs,
            ),
            ("read_count = logs READ", read, read_logs),
            ("failed_count = logs FAILED", failed, failed_logs),
        ] {
            if i64::from(stored) != counted {
                counters.push(of(
                    DifferenceKind::CampaignCounter,
                    detail,
                    Decimal::from(counted),
                    Decimal::from(stored),
                ));
            }
        }
    }
    found.extend(DifferenceKind::CampaignActualCost, costs);
    found.extend(DifferenceKind::CampaignCounter, counters);
    Ok(checked)
}

/// log id, vendor, campaign, wamid, cost, ledger_transaction_id, debit id, debit amount
type ChargeRow = (
    i64,
    Uuid,
    Option<Uuid>,
    Option<String>,
    Option<Decimal>,
    Option<i64>,
    Option<i64>,
    Option<Decimal>,
);

async fn messages(conn: &mut PgConnection, found: &mut Found) -> Result<i64, SettlementError> {
    let checked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM message_logs \
         WHERE charged_at IS NOT NULL OR flags && ARRAY['UNPRICED', 'CHARGE_REFUSED']::text[]",
    )
    .fetch_one(&mut *conn)
    .await?;

    let charges: Vec<ChargeRow> = sqlx::query_as(
        "SELECT l.id, l.vendor_id, l.campaign_id, l.wa_message_id, l.cost, \
                l.ledger_transaction_id, t.id, t.amount \
         FROM message_logs l \
         LEFT JOIN transactions t \
                ON t.reference = 'debit:' || l.wa_message_id AND t.kind = 'DEBIT_MESSAGE' \
         WHERE l.charged_at IS NOT NULL \
           AND ((t.id IS NULL AND (l.cost > 0 OR l.ledger_transaction_id IS NOT NULL)) \
                OR (t.id IS NOT NULL AND (t.amount IS DISTINCT FROM -l.cost \
                                          OR l.ledger_transaction_id IS DISTINCT FROM t.id))) \
         ORDER BY l.id LIMIT $1",
    )
    .bind(LIST_LIMIT + 1)
    .fetch_all(&mut *conn)
    .await?;
    let mut missing = Vec::new();
    let mut differing = Vec::new();
    for (log, vendor, campaign, wamid, cost, pointer, debit, amount) in charges {
        let base = |kind, detail: &str| Difference {
            vendor_id: Some(vendor),
            campaign_id: campaign,
            message_log_id: Some(log),
            wa_message_id: wamid.clone(),
            ..Difference::new(kind, detail)
        };
        match (debit, amount) {
            (Some(debit), Some(amount)) => {
                let detail = if Some(-amount) == cost {
                    "message_logs.ledger_transaction_id = its ledger debit"
                } else {
                    "ledger debit amount = -message_logs.cost"
                };
                differing.push(Difference {
                    transaction_id: Some(debit),
                    expected: cost.map(|c| -c),
                    actual: Some(amount),
                    ..base(DifferenceKind::ChargeAmountDiffers, detail)
                });
            }
            _ => missing.push(Difference {
                transaction_id: pointer,
                expected: cost.map(|c| -c),
                ..base(
                    DifferenceKind::ChargeWithoutDebit,
                    "a charged message has its ledger debit debit:<wamid>",
                )
            }),
        }
    }
    found.extend(DifferenceKind::ChargeWithoutDebit, missing);
    found.extend(DifferenceKind::ChargeAmountDiffers, differing);

    type DebitRow = (i64, Uuid, Uuid, Option<Uuid>, String, Decimal, Option<i64>);
    let debits: Vec<DebitRow> = sqlx::query_as(
        "SELECT t.id, t.vendor_id, t.wallet_id, t.campaign_id, substr(t.reference, 7), t.amount, l.id \
         FROM transactions t \
         LEFT JOIN message_logs l ON l.wa_message_id = substr(t.reference, 7) \
         WHERE t.kind = 'DEBIT_MESSAGE' AND t.reference LIKE 'debit:%' \
           AND (l.id IS NULL OR l.charged_at IS NULL) \
         ORDER BY t.id LIMIT $1",
    )
    .bind(LIST_LIMIT + 1)
    .fetch_all(&mut *conn)
    .await?;
    let rows = debits
        .into_iter()
        .map(
            |(id, vendor, wallet, campaign, wamid, amount, log)| Difference {
                vendor_id: Some(vendor),
                wallet_id: Some(wallet),
                campaign_id: campaign,
                message_log_id: log,
                wa_message_id: Some(wamid),
                transaction_id: Some(id),
                actual: Some(amount),
                ..Difference::new(
                    DifferenceKind::DebitWithoutCharge,
                    if log.is_some() {
                        "ledger debit of a message not marked charged"
                    } else {
                        "ledger debit without its message"
                    },
                )
            },
        )
        .collect();
    found.extend(DifferenceKind::DebitWithoutCharge, rows);

    type FlaggedRow = (i64, Uuid, Option<Uuid>, Option<String>, Vec<String>);
    let flagged: Vec<FlaggedRow> = sqlx::query_as(
        "SELECT id, vendor_id, campaign_id, wa_message_id, flags FROM message_logs \
         WHERE flags && ARRAY['UNPRICED', 'CHARGE_REFUSED']::text[] ORDER BY id LIMIT $1",
    )
    .bind(LIST_LIMIT + 1)
    .fetch_all(&mut *conn)
    .await?;
    let mut unpriced = Vec::new();
    let mut refused = Vec::new();
    for (log, vendor, campaign, wamid, flags) in flagged {
        let row = |kind, detail: &str| Difference {
            vendor_id: Some(vendor),
            campaign_id: campaign,
            message_log_id: Some(log),
            wa_message_id: wamid.clone(),
            ..Difference::new(kind, detail)
        };
        if flags.iter().any(|f| f == "UNPRICED") {
            unpriced.push(row(
                DifferenceKind::MessageUnpriced,
                "flagged UNPRICED: not charged",
            ));
        }
        if flags.iter().any(|f| f == "CHARGE_REFUSED") {
            refused.push(row(
                DifferenceKind::MessageChargeRefused,
                "flagged CHARGE_REFUSED: not charged",
            ));
        }
    }
    found.extend(DifferenceKind::MessageUnpriced, unpriced);
    found.extend(DifferenceKind::MessageChargeRefused, refused);
    Ok(checked)
}
