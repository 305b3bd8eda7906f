//! Campaign settlement: a finished campaign keeps its hold until its messages are final for
//! charging, then gives back what the hold still has and freezes `actual_cost`.
//!
//! A campaign is settled when it finished dispatching (COMPLETED, FAILED or CANCELLED) and
//! either every message is final for charging — FAILED, charged, not billable, or flagged
//! UNPRICED / CHARGE_REFUSED — with no recipient left PENDING or SENDING, or
//! `CAMPAIGN_SETTLE_AFTER` has passed since its last send (statuses Meta never sent will not
//! be charged from the hold; a late charge takes free balance instead).

use std::time::Duration;

use chrono::{DateTime, Utc};
use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_billing::BillingError;
use kloyst_config::{ConfigError, Env};
use kloyst_core::{DomainError, ErrorClass, VendorId};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Campaigns examined per query; a pass continues while full batches settle something.
const BATCH: i64 = 200;

/// The error of settlement and of the books reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    /// Another books reconciliation holds the lock.
    #[error("a books reconciliation is already running")]
    AlreadyRunning,
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl DomainError for SettlementError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::AlreadyRunning => ErrorClass::Conflict,
            Self::Billing(e) => e.class(),
            Self::Database(_) => ErrorClass::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRunning => "books_reconciliation_running",
            Self::Billing(e) => e.code(),
            Self::Database(_) => "internal_error",
        }
    }
}

/// When and how often settlement and the books reconciliation run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettlementSettings {
    /// `CAMPAIGN_SETTLE_AFTER` (24h): settle anyway this long after the last send.
    pub settle_after: Duration,
    /// `CAMPAIGN_SETTLE_INTERVAL` (60s): how often the worker-pool runs a settlement pass.
    pub settle_interval: Duration,
    /// `BOOKS_RECONCILE_INTERVAL` (24h): how often the books are reconciled (by one copy).
    pub books_interval: Duration,
}

impl Default for SettlementSettings {
    fn default() -> Self {
        Self {
            settle_after: Duration::from_secs(24 * 3600),
            settle_interval: Duration::from_secs(60),
            books_interval: Duration::from_secs(24 * 3600),
        }
    }
}

impl SettlementSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let settings = Self {
            settle_after: env.duration_or("CAMPAIGN_SETTLE_AFTER", defaults.settle_after)?,
            settle_interval: env
                .duration_or("CAMPAIGN_SETTLE_INTERVAL", defaults.settle_interval)?,
            books_interval: env.duration_or("BOOKS_RECONCILE_INTERVAL", defaults.books_interval)?,
        };
        // A zero interval would make tokio's interval panic.
        for (var, value) in [
            ("CAMPAIGN_SETTLE_INTERVAL", settings.settle_interval),
            ("BOOKS_RECONCILE_INTERVAL", settings.books_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid {
                    var,
                    reason: "must be more than 0".to_owned(),
                });
            }
        }
        Ok(settings)
    }
}

/// What one settlement pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SettleReport {
    /// Settled because every message was final for charging.
    pub settled_all_final: u64,
    /// Settled because `settle_after` had passed.
    pub settled_timeout: u64,
    /// Given back to wallets, summed over the settled campaigns.
    pub released: Decimal,
    /// Campaigns locked by someone else or changed since they were found: next pass.
    pub skipped: u64,
    /// Campaigns whose settlement failed (logged): next pass.
    pub failed: u64,
}

impl SettleReport {
    pub fn settled(&self) -> u64 {
        self.settled_all_final + self.settled_timeout
    }
}

/// Why a campaign was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    AllFinal,
    Timeout,
}

impl How {
    fn as_str(self) -> &'static str {
        match self {
            Self::AllFinal => "all_final",
            Self::Timeout => "settle_timeout",
        }
    }
}

/// True when every message of campaign `c` is final for charging and no recipient is still
/// to be sent.
const ALL_FINAL: &str = "\
    NOT EXISTS (SELECT 1 FROM message_logs l \
                WHERE l.campaign_id = c.id AND l.direction = 'OUTBOUND' \
                  AND l.status <> 'FAILED' AND l.charged_at IS NULL \
                  AND l.billable IS DISTINCT FROM false \
                  AND NOT l.flags && ARRAY['UNPRICED', 'CHARGE_REFUSED']::text[]) \
    AND NOT EXISTS (SELECT 1 FROM campaign_recipients r \
                    WHERE r.campaign_id = c.id AND r.status IN ('PENDING', 'SENDING'))";

/// True when `settle_after` ($2, ms) has passed at `now` ($1) since the last send.
const TIMED_OUT: &str =
    "coalesce(c.last_sent_at, c.finished_at) <= $1 - $2 * interval '1 millisecond'";

/// One settlement pass over the finished, unsettled campaigns; each is settled in its own
/// transaction, so one failure does not hold back the others.
pub async fn settle_campaigns(
    pg: &PgPool,
    settle_after: Duration,
    now: DateTime<Utc>,
) -> Result<SettleReport, SettlementError> {
    let after_ms = i64::try_from(settle_after.as_millis()).unwrap_or(i64::MAX);
    let mut report = SettleReport::default();
    loop {
        let due: Vec<(Uuid, Uuid)> = sqlx::query_as(&format!(
            "SELECT c.id, c.vendor_id FROM campaigns c \
             WHERE c.settled_at IS NULL AND c.status IN ('COMPLETED', 'FAILED', 'CANCELLED') \
               AND ({TIMED_OUT} OR ({ALL_FINAL})) \
             ORDER BY c.finished_at, c.id LIMIT $3"
        ))
        .bind(now)
        .bind(after_ms)
        .bind(BATCH)
        .fetch_all(pg)
        .await?;
        let before = report.settled();
        for &(campaign, vendor) in &due {
            let vendor = VendorId::from_uuid(vendor);
            match settle_one(pg, vendor, campaign, after_ms, now).await {
                Ok(Some((how, released))) => {
                    match how {
                        How::AllFinal => report.settled_all_final += 1,
                        How::Timeout => report.settled_timeout += 1,
                    }
                    report.released += released;
                }
                Ok(None) => report.skipped += 1,
                Err(error) => {
                    report.failed += 1;
                    tracing::warn!(
                        vendor.id = %vendor, campaign.id = %campaign, %error,
                        "campaign settlement failed; retried on the next pass"
                    );
                }
            }
        }
        if i64::try_from(due.len()).unwrap_or(i64::MAX) < BATCH || report.settled() == before {
            break;
        }
    }
    if report.settled() > 0 {
        metrics::counter!("campaigns_settled_total").increment(report.settled());
    }
    Ok(report)
}

/// Settles one campaign; `None` when it is locked by another transaction or no longer due.
async fn settle_one(
    pg: &PgPool,
    vendor: VendorId,
    campaign: Uuid,
    after_ms: i64,
    now: DateTime<Utc>,
) -> Result<Option<(How, Decimal)>, SettlementError> {
    let mut tx = pg.begin().await?;
    // The wallet first, as the debit path does (wallet, then campaign counters): settlement
    // never holds the campaign row while waiting for the wallet. With the wallet locked no
    // charge of this campaign can commit until settlement has.
    sqlx::query("SELECT id FROM wallets WHERE vendor_id = $1 FOR UPDATE")
        .bind(vendor.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
    let row: Option<(bool, bool, Decimal)> = sqlx::query_as(&format!(
        "SELECT ({ALL_FINAL}), {TIMED_OUT}, c.quoted_cost FROM campaigns c \
         WHERE c.id = $3 AND c.vendor_id = $4 AND c.settled_at IS NULL \
           AND c.status IN ('COMPLETED', 'FAILED', 'CANCELLED') \
         FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(after_ms)
    .bind(campaign)
    .bind(vendor.as_uuid())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((all_final, timed_out, quoted_cost)) = row else {
        return Ok(None);
    };
    let how = match (all_final, timed_out) {
        (true, _) => How::AllFinal,
        (false, true) => How::Timeout,
        (false, false) => return Ok(None),
    };
    let released = release_remainder(&mut tx, vendor, campaign).await?;
    let (actual_cost, charged, free, unfinished): (Decimal, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(cost), 0), \
                count(*) FILTER (WHERE charged_at IS NOT NULL AND cost > 0), \
                count(*) FILTER (WHERE charged_at IS NOT NULL AND cost = 0), \
                count(*) FILTER (WHERE status <> 'FAILED' AND charged_at IS NULL \
                                   AND billable IS DISTINCT FROM false \
                                   AND NOT flags && ARRAY['UNPRICED', 'CHARGE_REFUSED']::text[]) \
         FROM message_logs WHERE campaign_id = $1 AND direction = 'OUTBOUND'",
    )
    .bind(campaign)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE campaigns SET settled_at = $2, actual_cost = $3 WHERE id = $1")
        .bind(campaign)
        .bind(now)
        .bind(actual_cost)
        .execute(&mut *tx)
        .await?;
    let entry = AuditEntry {
        vendor_id: Some(vendor),
        actor: Actor::System,
        action: "campaign.settled",
        target_type: Some("campaign"),
        target_id: Some(campaign.to_string()),
        details: json!({
            "how": how.as_str(),
            "released": released,
            "actual_cost": actual_cost,
            "quoted_cost": quoted_cost,
            "messages_charged": charged,
            "messages_free": free,
            "messages_not_final": unfinished,
        }),
    };
    kloyst_audit::record(&mut tx, &entry, &RequestMeta::default()).await?;
    tx.commit().await?;
    tracing::info!(
        vendor.id = %vendor, campaign.id = %campaign, how = how.as_str(), %released,
        %actual_cost, %quoted_cost, messages_charged = charged, messages_not_final = unfinished,
        "campaign settled"
    );
    Ok(Some((how, released)))
}

/// Releases what the campaign's hold still has (reference `release:campaign:<id>`, the one
/// cancel uses, so a release is never posted twice). No hold, or a hold already closed, gives
/// back nothing. A hold fully captured but still ACTIVE is closed without a ledger row (no
/// money moves). Returns the amount released.
async fn release_remainder(
    conn: &mut PgConnection,
    vendor: VendorId,
    campaign: Uuid,
) -> Result<Decimal, SettlementError> {
    let hold: Option<(Uuid, Decimal, String)> = sqlx::query_as(
        "SELECT id, remaining, status FROM wallet_holds WHERE vendor_id = $1 AND campaign_id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(campaign)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((hold_id, remaining, status)) = hold else {
        return Ok(Decimal::ZERO);
    };
    if status != "ACTIVE" {
        return Ok(Decimal::ZERO);
    }
    if remaining <= Decimal::ZERO {
        sqlx::query(
            "UPDATE wallet_holds SET status = 'CLOSED', closed_at = now() \
             WHERE id = $1 AND status = 'ACTIVE' AND remaining = 0",
        )
        .bind(hold_id)
        .execute(&mut *conn)
        .await?;
        return Ok(Decimal::ZERO);
    }
    let reference = format!("release:campaign:{campaign}");
    match kloyst_billing::release_in(conn, vendor, hold_id, &reference).await {
        Ok(posted) if posted.replayed => Ok(Decimal::ZERO),
        Ok(posted) => Ok(-posted.hold_delta),
        Err(BillingError::HoldClosed) => Ok(Decimal::ZERO),
        Err(other) => Err(other.into()),
    }
}

/// The worker-pool's loop until `shutdown`: a settlement pass every `settle_interval`, and
/// the books reconciliation when due (every `books_interval`, by one copy at a time; the
/// stored runs say when the last one started, so a restart does not reconcile again).
pub async fn supervise_settlement(
    pg: PgPool,
    settings: SettlementSettings,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut settle_ticks = tokio::time::interval(settings.settle_interval);
    settle_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Checked more often than it runs: the run itself is due once per `books_interval`.
    let check = settings.books_interval.min(Duration::from_secs(3600));
    let mut books_ticks = tokio::time::interval(check);
    books_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = settle_ticks.tick() => {
                match settle_campaigns(&pg, settings.settle_after, Utc::now()).await {
                    Ok(report) if report != SettleReport::default() => {
                        tracing::info!(?report, "campaign settlement");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "campaign settlement pass failed"),
                }
            }
            _ = books_ticks.tick() => {
                match crate::books::reconcile_books_if_due(&pg, settings.books_interval).await {
                    Ok(Some(report)) if report.difference_count > 0 => tracing::error!(
                        books.run = report.id, difference_count = report.difference_count,
                        "the books have differences (see books_reconciliations)"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "books reconciliation failed"),
                }
            }
        }
    }
}
