//! Meta's `message_template_status_update` webhook applied to the template it concerns.
//! Meta retries and reorders deliveries: an event older than the one last applied is
//! ignored, and applying the same event twice changes nothing more.

use chrono::{DateTime, Utc};
use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::VendorId;
use kloyst_meta::webhook::TemplateStatusUpdate;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::TemplatesError;
use crate::model::CATEGORIES;
use crate::repo::{self, StatusChange};

/// What [`apply_status_update`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateStatusOutcome {
    Applied {
        template_id: Uuid,
        vendor_id: Uuid,
        status: String,
    },
    /// Older than the event last applied: ignored.
    Stale,
    /// No template of ours has this Meta id (or name and language).
    UnknownTemplate,
}

/// Our status for Meta's event; `None` for an event we do not know (kept as `meta_status`
/// only).
pub fn status_for_event(event: &str) -> Option<&'static str> {
    Some(match event {
        "APPROVED" | "REINSTATED" | "UNARCHIVED" | "UNPAUSE" | "UNPAUSED" => "APPROVED",
        "PENDING" => "PENDING",
        "REJECTED" => "REJECTED",
        "PAUSED" => "PAUSED",
        "DISABLED" => "DISABLED",
        "FLAGGED" => "FLAGGED",
        "IN_APPEAL" => "IN_APPEAL",
        "LIMIT_EXCEEDED" => "LIMIT_EXCEEDED",
        "LOCKED" => "LOCKED",
        "PENDING_DELETION" => "PENDING_DELETION",
        "DELETED" => "DELETED",
        "ARCHIVED" => "ARCHIVED",
        _ => return None,
    })
}

/// Applies one status update inside the caller's transaction (a system connection: the
/// webhook-worker's processor). Finds the template by Meta's id, else by the name sent to
/// Meta and the language (a template whose creation answer was lost), and links the id.
pub async fn apply_status_update(
    conn: &mut PgConnection,
    waba_id: &str,
    event_time: Option<DateTime<Utc>>,
    update: &TemplateStatusUpdate,
) -> Result<TemplateStatusOutcome, TemplatesError> {
    let mut found = repo::lock_by_meta_id(conn, &update.message_template_id).await?;
    if found.is_none() {
        if let (Some(name), Some(language)) = (
            update.message_template_name.as_deref(),
            update.message_template_language.as_deref(),
        ) {
            found = repo::lock_by_meta_name(conn, waba_id, name, language).await?;
        }
    }
    let Some(template) = found else {
        return Ok(TemplateStatusOutcome::UnknownTemplate);
    };
    if let (Some(at), Some(last)) = (event_time, template.status_changed_at) {
        if at < last {
            return Ok(TemplateStatusOutcome::Stale);
        }
    }

    let event = update.event.trim().to_ascii_uppercase();
    let known = status_for_event(&event);
    if known.is_none() {
        tracing::warn!(template.id = %template.id, event, "unknown template event; status kept");
    }
    let status = known.unwrap_or(template.status.as_str()).to_owned();
    let rejected = status == "REJECTED";
    let reason = update
        .reason
        .as_deref()
        .filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("NONE"));
    let change = StatusChange {
        status: &status,
        meta_status: &event,
        meta_template_id: &update.message_template_id,
        meta_category: update
            .message_template_category
            .as_deref()
            .and_then(|c| CATEGORIES.into_iter().find(|k| k.eq_ignore_ascii_case(c))),
        // Kept while rejected; cleared once Meta approves (e.g. after an appeal).
        rejection_reason: reason.filter(|_| rejected),
        rejection_info: update.rejection_info.as_ref().filter(|_| rejected),
        event_time,
    };
    repo::apply_status(conn, template.id, &change).await?;
    let entry = AuditEntry {
        vendor_id: Some(VendorId::from_uuid(template.vendor_id)),
        actor: Actor::System,
        action: "template.status_changed",
        target_type: Some("template"),
        target_id: Some(template.id.to_string()),
        details: json!({
            "event": event,
            "status": status,
            "previous_status": template.status,
            "reason": reason,
            "meta_template_id": update.message_template_id,
        }),
    };
    kloyst_audit::record(conn, &entry, &RequestMeta::default()).await?;
    Ok(TemplateStatusOutcome::Applied {
        template_id: template.id,
        vendor_id: template.vendor_id,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_statuses() {
        for (event, status) in [
            ("APPROVED", "APPROVED"),
            ("REINSTATED", "APPROVED"),
            ("UNARCHIVED", "APPROVED"),
            ("UNPAUSE", "APPROVED"),
            ("REJECTED", "REJECTED"),
            ("PAUSED", "PAUSED"),
            ("DISABLED", "DISABLED"),
            ("FLAGGED", "FLAGGED"),
            ("IN_APPEAL", "IN_APPEAL"),
            ("LIMIT_EXCEEDED", "LIMIT_EXCEEDED"),
            ("LOCKED", "LOCKED"),
            ("PENDING_DELETION", "PENDING_DELETION"),
            ("DELETED", "DELETED"),
            ("ARCHIVED", "ARCHIVED"),
            ("PENDING", "PENDING"),
        ] {
            assert_eq!(status_for_event(event), Some(status), "{event}");
        }
        assert_eq!(status_for_event("SOMETHING_NEW"), None);
    }
}
