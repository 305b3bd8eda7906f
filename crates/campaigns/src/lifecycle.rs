//! Pause, resume and cancel: each one tenant transaction that locks the campaign row first,
//! so two changes of one campaign (or a change and the scheduler) never interleave. The
//! dispatcher reads the status between batches, so a pause or a cancel takes effect within
//! a batch.

use chrono::Utc;
use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::VendorId;
use kloyst_identity::Principal;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::campaign_repo::{self, CampaignRow};
use crate::error::CampaignError;
use crate::views::CampaignView;
use crate::Campaigns;

/// Statuses no action leaves.
pub(crate) const FINAL: [&str; 3] = ["COMPLETED", "FAILED", "CANCELLED"];

impl Campaigns {
    /// QUEUED, PROCESSING or SCHEDULED → PAUSED (reason MANUAL).
    pub async fn pause(
        &self,
        who: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<CampaignView, CampaignError> {
        let vendor = who.vendor_id;
        let mut tx = self.begin_for(who).await?;
        let campaign = campaign_repo::lock(&mut tx, vendor, id).await?;
        if !["QUEUED", "PROCESSING", "SCHEDULED"].contains(&campaign.status.as_str()) {
            return Err(invalid(campaign, "paused"));
        }
        sqlx::query(
            "UPDATE campaigns SET status = 'PAUSED', pause_reason = 'MANUAL', paused_at = now()
              WHERE vendor_id = $1 AND id = $2",
        )
        .bind(vendor.as_uuid())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, who, id, "campaign.paused", &campaign.status, meta).await?;
        let view = reread(&mut tx, vendor, id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// PAUSED → QUEUED with a new dispatch job; a campaign paused before its scheduled time
    /// goes back to SCHEDULED instead (the scheduler starts it).
    pub async fn resume(
        &self,
        who: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<CampaignView, CampaignError> {
        let vendor = who.vendor_id;
        let mut tx = self.begin_for(who).await?;
        let campaign = campaign_repo::lock(&mut tx, vendor, id).await?;
        if campaign.status != "PAUSED" {
            return Err(invalid(campaign, "resumed"));
        }
        let not_yet = campaign
            .scheduled_at
            .is_some_and(|at| at > Utc::now() && campaign.queued_at.is_none());
        let status = if not_yet { "SCHEDULED" } else { "QUEUED" };
        sqlx::query(
            "UPDATE campaigns
                SET status = $3, pause_reason = NULL,
                    queued_at = CASE WHEN $3 = 'QUEUED' THEN now() ELSE queued_at END
              WHERE vendor_id = $1 AND id = $2",
        )
        .bind(vendor.as_uuid())
        .bind(id)
        .bind(status)
        .execute(&mut *tx)
        .await?;
        if status == "QUEUED" {
            campaign_repo::enqueue_dispatch(&mut tx, vendor, id, meta.request_id.clone()).await?;
        }
        audit(&mut tx, who, id, "campaign.resumed", &campaign.status, meta).await?;
        let view = reread(&mut tx, vendor, id).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Any status but a final one → CANCELLED: recipients not yet sent are CANCELLED and
    /// what the hold still has goes back to the wallet.
    pub async fn cancel(
        &self,
        who: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<CampaignView, CampaignError> {
        let vendor = who.vendor_id;
        let mut tx = self.begin_for(who).await?;
        let campaign = campaign_repo::lock(&mut tx, vendor, id).await?;
        if FINAL.contains(&campaign.status.as_str()) {
            return Err(invalid(campaign, "cancelled"));
        }
        sqlx::query(
            "UPDATE campaigns SET status = 'CANCELLED', finished_at = now()
              WHERE vendor_id = $1 AND id = $2",
        )
        .bind(vendor.as_uuid())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let cancelled = campaign_repo::cancel_pending(&mut tx, vendor, id).await?;
        let released = campaign_repo::release_hold(&mut tx, vendor, id).await?;
        let entry = AuditEntry {
            vendor_id: Some(vendor),
            actor: Actor::User(who.user_id),
            action: "campaign.cancelled",
            target_type: Some("campaign"),
            target_id: Some(id.to_string()),
            details: json!({
                "from": campaign.status,
                "recipients_cancelled": cancelled,
                "released": released,
            }),
        };
        kloyst_audit::record(&mut tx, &entry, meta).await?;
        let view = reread(&mut tx, vendor, id).await?;
        tx.commit().await?;
        tracing::info!(
            vendor.id = %vendor, campaign.id = %id, recipients_cancelled = cancelled,
            released = %released, "campaign cancelled"
        );
        Ok(view)
    }
}

fn invalid(campaign: CampaignRow, action: &'static str) -> CampaignError {
    CampaignError::InvalidState {
        status: campaign.status,
        action,
    }
}

async fn audit(
    conn: &mut PgConnection,
    who: &Principal,
    id: Uuid,
    action: &str,
    from: &str,
    meta: &RequestMeta,
) -> Result<(), CampaignError> {
    let entry = AuditEntry {
        vendor_id: Some(who.vendor_id),
        actor: Actor::User(who.user_id),
        action,
        target_type: Some("campaign"),
        target_id: Some(id.to_string()),
        details: json!({ "from": from }),
    };
    kloyst_audit::record(conn, &entry, meta).await?;
    Ok(())
}

async fn reread(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> Result<CampaignView, CampaignError> {
    let row = campaign_repo::find(conn, vendor, id)
        .await?
        .ok_or(CampaignError::NotFound)?;
    Ok(row.into_view(None))
}
