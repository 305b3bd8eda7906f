//! Starting scheduled campaigns at their time. A schedule missed by more than the grace (the
//! scheduler was down) is not started silently: the campaign FAILS with `SCHEDULE_MISSED`,
//! its recipients are CANCELLED and its hold released, so the vendor sees it and relaunches.

use chrono::{DateTime, Duration, Utc};
use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::VendorId;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::campaign_repo;
use crate::error::CampaignError;
use crate::views::SchedulerReport;

/// Campaigns handled per transaction.
const BATCH: i64 = 100;

/// Starts (or fails) every SCHEDULED campaign due at `now`, on the owner's pool (all vendors,
/// no RLS). Due rows are taken `FOR UPDATE SKIP LOCKED`, so two schedulers running at once
/// never start one campaign twice, and a campaign being paused or cancelled is left to that
/// call.
pub async fn start_due_scheduled(
    pg: &PgPool,
    now: DateTime<Utc>,
    grace: Duration,
) -> Result<SchedulerReport, CampaignError> {
    let mut report = SchedulerReport::default();
    loop {
        let mut tx = pg.begin().await?;
        let due: Vec<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, vendor_id, scheduled_at FROM campaigns
              WHERE status = 'SCHEDULED' AND scheduled_at <= $1
              ORDER BY scheduled_at
              LIMIT $2
              FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        for (id, vendor, scheduled_at) in &due {
            let vendor = VendorId::from_uuid(*vendor);
            if now - *scheduled_at <= grace {
                start(&mut tx, vendor, *id).await?;
                report.started.push(*id);
            } else {
                miss(&mut tx, vendor, *id, *scheduled_at, now).await?;
                report.missed.push(*id);
            }
        }
        tx.commit().await?;
        if (due.len() as i64) < BATCH {
            break;
        }
    }
    if !report.started.is_empty() || !report.missed.is_empty() {
        tracing::info!(
            started = report.started.len(),
            missed = report.missed.len(),
            "scheduled campaigns handled"
        );
    }
    Ok(report)
}

async fn start(conn: &mut PgConnection, vendor: VendorId, id: Uuid) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE campaigns SET status = 'QUEUED', queued_at = now()
          WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    campaign_repo::enqueue_dispatch(conn, vendor, id, None).await?;
    record(
        conn,
        vendor,
        id,
        "campaign.started",
        json!({ "by": "scheduler" }),
    )
    .await
}

async fn miss(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    scheduled_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE campaigns SET status = 'FAILED', failure_reason = 'SCHEDULE_MISSED',
                finished_at = now()
          WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let cancelled = campaign_repo::cancel_pending(conn, vendor, id).await?;
    let released = campaign_repo::release_hold(conn, vendor, id).await?;
    tracing::warn!(
        vendor.id = %vendor, campaign.id = %id, %scheduled_at, late_seconds = (now - scheduled_at).num_seconds(),
        "a scheduled campaign missed its time: marked FAILED, hold released"
    );
    let details = json!({
        "reason": "SCHEDULE_MISSED",
        "scheduled_at": scheduled_at,
        "recipients_cancelled": cancelled,
        "released": released,
    });
    record(conn, vendor, id, "campaign.schedule_missed", details).await
}

async fn record(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    action: &str,
    details: serde_json::Value,
) -> Result<(), CampaignError> {
    let entry = AuditEntry {
        vendor_id: Some(vendor),
        actor: Actor::System,
        action,
        target_type: Some("campaign"),
        target_id: Some(id.to_string()),
        details,
    };
    kloyst_audit::record(conn, &entry, &RequestMeta::default()).await?;
    Ok(())
}
