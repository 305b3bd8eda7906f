//! The watchdog's last resort: a QUEUED or PROCESSING campaign that made no progress for
//! `CAMPAIGN_WATCHDOG_FAIL_AFTER` although it was planned again is FAILED
//! (`WATCHDOG_TIMEOUT`), so no campaign stays running (and holding money) forever.
//!
//! Progress is `last_progress_at` (a batch recorded, a stuck recipient settled, the first
//! plan) or a (re)start (`queued_at`, `started_at`); a re-plan is not progress and is
//! stamped apart, in `replanned_at`. A campaign is failed only when:
//! - it was re-planned during this stall and that re-plan had `CAMPAIGN_WATCHDOG` to take
//!   effect (or it has nothing PENDING, so a re-plan cannot help), and
//! - none of its recipients is SENDING: Meta may have accepted those; the reconciler settles
//!   them (SENT or UNKNOWN) once their lease ends, which is progress, so such a campaign is
//!   failed a full `CAMPAIGN_WATCHDOG_FAIL_AFTER` later at the earliest, never with a
//!   recipient whose fate is open.
//!
//! PAUSED campaigns are waiting for a person (a token, a template) and are left alone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::VendorId;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::campaign_repo;
use crate::error::CampaignError;

/// Campaigns examined per pass (more wait for the next pass).
const BATCH: i64 = 100;

/// The stall rule on campaign `c`: `$1` = fail after (ms), `$2` = the watchdog (ms).
const STALLED: &str = "c.status IN ('QUEUED', 'PROCESSING')
   AND greatest(c.last_progress_at, c.queued_at, c.started_at, c.created_at)
       < now() - $1 * interval '1 millisecond'
   AND NOT EXISTS (SELECT 1 FROM campaign_recipients r
                    WHERE r.campaign_id = c.id AND r.status = 'SENDING')
   AND (   (c.replanned_at > greatest(c.last_progress_at, c.queued_at, c.started_at, c.created_at)
            AND c.replanned_at < now() - $2 * interval '1 millisecond')
        OR NOT EXISTS (SELECT 1 FROM campaign_recipients r
                        WHERE r.campaign_id = c.id AND r.status = 'PENDING'))";

/// Fails every campaign stalled past `fail_after` (see the module doc; `watchdog` is the
/// re-plan interval, `CAMPAIGN_WATCHDOG`), on the owner's pool (all vendors, no RLS): FAILED
/// with `WATCHDOG_TIMEOUT` and `finished_at`, its PENDING recipients CANCELLED (pending
/// count adjusted), its hold released, an audit row `campaign.failed` (actor System), one
/// transaction per campaign. The campaign is re-checked under `FOR UPDATE SKIP LOCKED`, so
/// one being recorded, paused or cancelled right now is left to that call. Returns the ids.
pub async fn fail_stalled(
    pg: &PgPool,
    watchdog: Duration,
    fail_after: Duration,
) -> Result<Vec<Uuid>, CampaignError> {
    let fail_ms = millis(fail_after);
    let watchdog_ms = millis(watchdog);
    let candidates: Vec<Uuid> = sqlx::query_scalar(&format!(
        "SELECT c.id FROM campaigns c WHERE {STALLED} ORDER BY c.last_progress_at LIMIT $3"
    ))
    .bind(fail_ms)
    .bind(watchdog_ms)
    .bind(BATCH)
    .fetch_all(pg)
    .await?;
    let mut failed = Vec::with_capacity(candidates.len());
    for id in candidates {
        let mut tx = pg.begin().await?;
        let locked: Option<(Uuid, Option<DateTime<Utc>>)> = sqlx::query_as(&format!(
            "SELECT c.vendor_id, c.last_progress_at FROM campaigns c
              WHERE c.id = $3 AND {STALLED}
              FOR UPDATE SKIP LOCKED"
        ))
        .bind(fail_ms)
        .bind(watchdog_ms)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((vendor, last_progress_at)) = locked else {
            continue;
        };
        fail(&mut tx, VendorId::from_uuid(vendor), id, last_progress_at).await?;
        tx.commit().await?;
        failed.push(id);
    }
    Ok(failed)
}

async fn fail(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    last_progress_at: Option<DateTime<Utc>>,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE campaigns SET status = 'FAILED', failure_reason = 'WATCHDOG_TIMEOUT',
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
        vendor.id = %vendor, campaign.id = %id, ?last_progress_at, cancelled, %released,
        "campaign made no progress although planned again: marked FAILED (WATCHDOG_TIMEOUT), hold released"
    );
    let entry = AuditEntry {
        vendor_id: Some(vendor),
        actor: Actor::System,
        action: "campaign.failed",
        target_type: Some("campaign"),
        target_id: Some(id.to_string()),
        details: json!({
            "reason": "WATCHDOG_TIMEOUT",
            "last_progress_at": last_progress_at,
            "recipients_cancelled": cancelled,
            "released": released,
        }),
    };
    kloyst_audit::record(conn, &entry, &RequestMeta::default()).await?;
    Ok(())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
