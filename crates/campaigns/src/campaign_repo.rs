//! The campaign's SQL shared by launch, lifecycle, scheduler and reads. Every query filters by
//! the vendor itself besides RLS (the scheduler's owner connection has no RLS).

use chrono::{DateTime, Utc};
use kloyst_billing::BillingError;
use kloyst_core::VendorId;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::CampaignError;
use crate::jobs::DispatchCampaign;
use crate::views::{CampaignCounters, CampaignView};

/// The columns [`CampaignRow`] reads.
pub(crate) const CAMPAIGN_COLUMNS: &str =
    "id, kind, name, status, template_id, list_id, parameters,
    pause_reason, failure_reason, total_count, pending_count, sent_count, delivered_count,
    read_count, failed_count, unknown_count, opted_out_count, skipped_count, currency,
    quoted_cost, actual_cost, scheduled_at, queued_at, started_at, paused_at, finished_at,
    created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CampaignRow {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub status: String,
    pub template_id: Uuid,
    pub list_id: Option<Uuid>,
    pub parameters: serde_json::Value,
    pub pause_reason: Option<String>,
    pub failure_reason: Option<String>,
    pub total_count: i32,
    pub pending_count: i32,
    pub sent_count: i32,
    pub delivered_count: i32,
    pub read_count: i32,
    pub failed_count: i32,
    pub unknown_count: i32,
    pub opted_out_count: i32,
    pub skipped_count: i32,
    pub currency: String,
    pub quoted_cost: Decimal,
    pub actual_cost: Decimal,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CampaignRow {
    /// The API's view. `sent_last_window` (recipients sent in the last `window_secs`) gives
    /// the send rate and the ETA; `None` where it was not measured.
    pub fn into_view(self, sent_last_window: Option<(i64, i32)>) -> CampaignView {
        let counters = CampaignCounters {
            total: self.total_count,
            pending: self.pending_count,
            sent: self.sent_count,
            delivered: self.delivered_count,
            read: self.read_count,
            failed: self.failed_count,
            unknown: self.unknown_count,
            opted_out: self.opted_out_count,
            skipped: self.skipped_count,
        };
        let progress_percent = progress_percent(counters.total, counters.pending);
        let send_rate =
            sent_last_window.map(|(sent, window)| sent as f64 / f64::from(window.max(1)));
        // Integer arithmetic: pending × window / sent, rounded up.
        let eta_seconds = sent_last_window
            .filter(|(sent, _)| *sent > 0)
            .map(|(sent, window)| {
                let pending = i64::from(counters.pending.max(0)) * i64::from(window);
                (pending + sent - 1) / sent
            });
        CampaignView {
            id: self.id,
            kind: self.kind,
            name: self.name,
            status: self.status,
            template_id: self.template_id,
            list_id: self.list_id,
            parameters: self.parameters,
            pause_reason: self.pause_reason,
            failure_reason: self.failure_reason,
            counters,
            currency: self.currency,
            quoted_cost: self.quoted_cost,
            actual_cost: self.actual_cost,
            progress_percent,
            send_rate,
            eta_seconds,
            scheduled_at: self.scheduled_at,
            queued_at: self.queued_at,
            started_at: self.started_at,
            paused_at: self.paused_at,
            finished_at: self.finished_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// `(total − pending) / total` in percent, 2 decimals; an empty campaign is done.
pub(crate) fn progress_percent(total: i32, pending: i32) -> f64 {
    if total <= 0 {
        return 100.0;
    }
    let done = f64::from(total - pending.clamp(0, total));
    (done * 10_000.0 / f64::from(total)).round() / 100.0
}

pub(crate) async fn find(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> sqlx::Result<Option<CampaignRow>> {
    sqlx::query_as(&format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE vendor_id = $1 AND id = $2"
    ))
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The campaign, locked until the caller's transaction ends: lifecycle changes of one
/// campaign are serialised.
pub(crate) async fn lock(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> Result<CampaignRow, CampaignError> {
    sqlx::query_as(&format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE vendor_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(CampaignError::NotFound)
}

/// Writes the job that starts (or resumes) sending, in the caller's transaction.
pub(crate) async fn enqueue_dispatch(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    correlation_id: Option<String>,
) -> Result<(), CampaignError> {
    let job = DispatchCampaign {
        campaign_id: id,
        vendor_id: vendor.as_uuid(),
    };
    kloyst_outbox::enqueue_job(
        conn,
        kloyst_queue::streams::JOBS,
        &job,
        Some(vendor),
        correlation_id,
    )
    .await?;
    Ok(())
}

/// Recipients not yet handed to a sender are CANCELLED in one statement; the campaign's
/// pending counter goes down by as many. Returns how many.
pub(crate) async fn cancel_pending(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> sqlx::Result<i64> {
    let cancelled = sqlx::query(
        "UPDATE campaign_recipients SET status = 'CANCELLED'
          WHERE campaign_id = $1 AND vendor_id = $2 AND status = 'PENDING'",
    )
    .bind(id)
    .bind(vendor.as_uuid())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let cancelled = i64::try_from(cancelled).unwrap_or(i64::MAX);
    sqlx::query(
        "UPDATE campaigns SET pending_count = GREATEST(pending_count - $3, 0)
          WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(id)
    .bind(cancelled)
    .execute(conn)
    .await?;
    Ok(cancelled)
}

/// Gives back what the campaign's hold still has. A campaign without a hold (it cost
/// nothing) or whose hold is already closed has nothing to give back. Returns the amount.
pub(crate) async fn release_hold(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> Result<Decimal, CampaignError> {
    let hold: Option<(Uuid, Decimal, String)> = sqlx::query_as(
        "SELECT id, remaining, status FROM wallet_holds WHERE vendor_id = $1 AND campaign_id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((hold_id, remaining, status)) = hold else {
        return Ok(Decimal::ZERO);
    };
    if status != "ACTIVE" || remaining <= Decimal::ZERO {
        return Ok(Decimal::ZERO);
    }
    let released =
        kloyst_billing::release_in(conn, vendor, hold_id, &format!("release:campaign:{id}")).await;
    match released {
        Ok(_) => Ok(remaining),
        Err(BillingError::HoldClosed) => Ok(Decimal::ZERO),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(total: i32, pending: i32) -> CampaignRow {
        let at = Utc::now();
        CampaignRow {
            id: Uuid::nil(),
            kind: "BULK".to_owned(),
            name: "n".to_owned(),
            status: "PROCESSING".to_owned(),
            template_id: Uuid::nil(),
            list_id: None,
            parameters: serde_json::json!({}),
            pause_reason: None,
            failure_reason: None,
            total_count: total,
            pending_count: pending,
            sent_count: total - pending,
            delivered_count: 0,
            read_count: 0,
            failed_count: 0,
            unknown_count: 0,
            opted_out_count: 0,
            skipped_count: 0,
            currency: "INR".to_owned(),
            quoted_cost: Decimal::ZERO,
            actual_cost: Decimal::ZERO,
            scheduled_at: None,
            queued_at: None,
            started_at: None,
            paused_at: None,
            finished_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn progress_is_the_share_no_longer_pending() {
        assert_eq!(progress_percent(6, 3), 50.0);
        assert_eq!(progress_percent(3, 2), 33.33);
        assert_eq!(progress_percent(3, 0), 100.0);
        assert_eq!(progress_percent(0, 0), 100.0);
    }

    #[test]
    fn the_eta_is_pending_over_the_rate_rounded_up_and_absent_without_sends() {
        let view = row(1000, 301).into_view(Some((120, 60)));
        assert_eq!(view.send_rate, Some(2.0));
        assert_eq!(view.eta_seconds, Some(151));
        let stalled = row(1000, 301).into_view(Some((0, 60)));
        assert_eq!(stalled.send_rate, Some(0.0));
        assert_eq!(stalled.eta_seconds, None);
        let unmeasured = row(1000, 301).into_view(None);
        assert_eq!((unmeasured.send_rate, unmeasured.eta_seconds), (None, None));
    }
}
