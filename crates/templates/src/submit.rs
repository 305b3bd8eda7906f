//! The submitter: sends a saved template to Meta (`POST /{WABA_ID}/message_templates`)
//! under its vendor-prefixed name.
//!
//! Meta creates at most ~100 templates per WABA per hour. The submitter counts the last
//! hour's submissions under a per-WABA advisory lock, held (with the template's row lock)
//! across the call to Meta so that two workers cannot both take the last slot; when the
//! window is full the job is retried once a slot frees, so creation is queued, not failed.
//! Submissions are rare (≤ 100 an hour), so holding a transaction for one bounded HTTP
//! call is cheap.

use std::time::Duration;

use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::VendorId;
use kloyst_db::PgPool;
use kloyst_meta::{ErrorClass, MetaClient, MetaError, NewTemplate};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::model::CATEGORIES;
use crate::repo;
use crate::service::SubmitTemplate;
use crate::settings::TemplateSubmitterSettings;

/// How one submission ended (all final: the job is done).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Meta took it: in review (`PENDING`) or `APPROVED` at once.
    Submitted {
        meta_template_id: String,
        status: String,
    },
    /// Sent before (a duplicate delivery), or no longer PENDING.
    AlreadySubmitted,
    /// No such template of that vendor.
    Missing,
    /// Meta refused it for good; the template is SUBMIT_FAILED with Meta's reason.
    Refused { error: String },
}

/// A submission to try again.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The hourly window is full, or Meta throttles: try after `delay`.
    #[error("{reason}")]
    RetryAfter { delay: Duration, reason: String },
    /// Meta or the network failed, or the account needs fixing: retry with backoff.
    #[error("{0}")]
    Retry(String),
    #[error("postgres: {0}")]
    Store(#[from] sqlx::Error),
}

/// Sends templates to Meta. Cheap to clone.
#[derive(Clone)]
pub struct TemplateSubmitter {
    pg: PgPool,
    client: MetaClient,
    waba_id: String,
    per_hour: u32,
}

/// Added to a computed wait so that the slot has surely freed when the job runs again.
const SLOT_MARGIN: Duration = Duration::from_secs(1);

impl TemplateSubmitter {
    // MetaClient::new's own error, returned once at start-up: its size does not matter.
    #[allow(clippy::result_large_err)]
    pub fn new(pg: PgPool, settings: &TemplateSubmitterSettings) -> Result<Self, MetaError> {
        Ok(Self {
            pg,
            client: MetaClient::new(settings.client.clone())?,
            waba_id: settings.waba_id.clone(),
            per_hour: settings.per_hour.max(1),
        })
    }

    pub async fn submit(&self, job: &SubmitTemplate) -> Result<SubmitOutcome, SubmitError> {
        let id = job.template_id;
        let mut tx = self.pg.begin().await?;
        let Some(row) = repo::lock_for_submit(&mut tx, job.vendor_id.as_uuid(), id).await? else {
            return Ok(SubmitOutcome::Missing);
        };
        if row.status != "PENDING" || row.submitted_at.is_some() {
            return Ok(SubmitOutcome::AlreadySubmitted);
        }
        let waba = repo::ensure_shared_waba(&mut tx, &self.waba_id).await?;
        repo::lock_waba_submissions(&mut tx, waba).await?;
        if let Some(wait_secs) = repo::hourly_window_full_for(&mut tx, waba, self.per_hour).await? {
            // Spread the waiting templates over the coming slots, oldest first, so that they
            // do not all wake for the same freed slot.
            let ahead = repo::unsubmitted_before(&mut tx, row.created_at).await?;
            let spacing = 3_600.0 / f64::from(self.per_hour);
            let delay = Duration::from_secs_f64(wait_secs + ahead as f64 * spacing) + SLOT_MARGIN;
            return Err(SubmitError::RetryAfter {
                delay,
                reason: format!(
                    "Meta's limit of {} new templates per hour for WABA {} is reached",
                    self.per_hour, self.waba_id
                ),
            });
        }

        let request = NewTemplate {
            name: row.meta_name,
            language: row.language,
            category: row.category.to_ascii_lowercase(),
            components: row.components,
            parameter_format: Some(row.parameter_format.to_ascii_lowercase()),
        };
        let vendor = VendorId::from_uuid(row.vendor_id);
        match self.client.create_template(&self.waba_id, &request).await {
            Ok(created) => {
                let status = if created.status.eq_ignore_ascii_case("APPROVED") {
                    "APPROVED"
                } else {
                    "PENDING"
                };
                let meta_category = created
                    .category
                    .as_deref()
                    .and_then(|c| CATEGORIES.into_iter().find(|k| k.eq_ignore_ascii_case(c)));
                repo::mark_submitted(
                    &mut tx,
                    id,
                    waba,
                    &created.id,
                    status,
                    &created.status,
                    meta_category,
                )
                .await?;
                audit(
                    &mut tx,
                    vendor,
                    "template.submitted",
                    id,
                    json!({ "meta_template_id": created.id, "meta_status": created.status, "meta_category": created.category }),
                )
                .await?;
                tx.commit().await?;
                tracing::info!(template.id = %id, meta_template_id = %created.id, status, "template submitted to Meta");
                Ok(SubmitOutcome::Submitted {
                    meta_template_id: created.id,
                    status: status.to_owned(),
                })
            }
            Err(error) => {
                let described = describe(&error);
                let class = error.class();
                if class == ErrorClass::Permanent {
                    repo::mark_submit_failed(&mut tx, id, waba, &described).await?;
                    audit(
                        &mut tx,
                        vendor,
                        "template.submit_failed",
                        id,
                        json!({ "error": described, "code": error.code() }),
                    )
                    .await?;
                    tx.commit().await?;
                    tracing::warn!(template.id = %id, error = %described, "Meta refused the template");
                    return Ok(SubmitOutcome::Refused { error: described });
                }
                // Counted for whoever looks at the template; the job tries again.
                repo::record_failed_try(&mut tx, id, &described).await?;
                tx.commit().await?;
                Err(match class {
                    ErrorClass::RetryLater(delay) => SubmitError::RetryAfter {
                        delay,
                        reason: format!("Meta throttles template creation: {described}"),
                    },
                    ErrorClass::AccountFatal => {
                        tracing::error!(
                            template.id = %id,
                            waba_id = %self.waba_id,
                            error = %described,
                            "Meta refuses the account (token, permissions or lock): fix META_ACCESS_TOKEN / the WABA; template submissions keep retrying"
                        );
                        SubmitError::Retry(format!("account problem at Meta: {described}"))
                    }
                    _ => SubmitError::Retry(format!("Meta failed: {described}")),
                })
            }
        }
    }
}

/// Meta's message and code, as stored in `last_submit_error` and shown to the vendor.
fn describe(error: &MetaError) -> String {
    match error {
        MetaError::Api {
            code,
            message,
            details,
            ..
        } => match details {
            Some(details) if !details.is_empty() => format!("{message}: {details} (code {code})"),
            _ => format!("{message} (code {code})"),
        },
        other => other.to_string(),
    }
}

async fn audit(
    conn: &mut PgConnection,
    vendor: VendorId,
    action: &str,
    template: Uuid,
    details: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let entry = AuditEntry {
        vendor_id: Some(vendor),
        actor: Actor::System,
        action,
        target_type: Some("template"),
        target_id: Some(template.to_string()),
        details,
    };
    kloyst_audit::record(conn, &entry, &RequestMeta::default()).await
}
