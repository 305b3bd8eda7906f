//! Meta's `message_template_status_update` applied with `apply_status_update`, on a system
//! connection as the webhook-worker's processor calls it.

use chrono::{DateTime, Utc};
use kloyst_identity::Role;
use kloyst_meta::webhook::TemplateStatusUpdate;
use kloyst_templates::{apply_status_update, meta_name, TemplateStatusOutcome};
use kloyst_testkit::TestStores;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{audit_rows, column, create, new_vendor, setup};

const WABA: &str = "100000000000001";

fn update(event: &str, meta_id: &str) -> TemplateStatusUpdate {
    serde_json::from_value(json!({
        "event": event,
        "message_template_id": meta_id.parse::<u64>().unwrap(),
        "message_template_name": "unused",
        "message_template_language": "en_US",
        "reason": "NONE",
        "message_template_category": "UTILITY",
    }))
    .unwrap()
}

fn at(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(1_751_247_548 + seconds, 0)
}

async fn apply(
    stores: &TestStores,
    event_time: Option<DateTime<Utc>>,
    update: &TemplateStatusUpdate,
) -> TemplateStatusOutcome {
    let mut tx = stores.pg.begin().await.unwrap();
    let outcome = apply_status_update(&mut tx, WABA, event_time, update)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    outcome
}

/// A template of a new vendor that Meta knows as `meta_id`; (template id, vendor id).
async fn submitted(stores: &TestStores, meta_id: &str) -> (Uuid, Uuid) {
    let templates = kloyst_templates::Templates::new(stores.pg.clone());
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    let template = create(&templates, &admin, "order_update").await;
    sqlx::query("UPDATE templates SET meta_template_id = $2, submitted_at = now() WHERE id = $1")
        .bind(template.id)
        .bind(meta_id)
        .execute(&stores.pg)
        .await
        .unwrap();
    (template.id, admin.vendor_id.as_uuid())
}

#[tokio::test]
async fn approval_applies_records_metas_category_and_an_audit_row() {
    let (stores, _) = setup().await;
    let (id, vendor) = submitted(&stores, "1689556908129832").await;
    let mut approved = update("APPROVED", "1689556908129832");
    approved.message_template_category = Some("MARKETING".to_owned());

    let outcome = apply(&stores, at(0), &approved).await;
    assert_eq!(
        outcome,
        TemplateStatusOutcome::Applied {
            template_id: id,
            vendor_id: vendor,
            status: "APPROVED".to_owned()
        }
    );
    assert_eq!(column::<String>(&stores.pg, id, "status").await, "APPROVED");
    assert_eq!(
        column::<String>(&stores.pg, id, "meta_status").await,
        "APPROVED"
    );
    assert_eq!(
        column::<String>(&stores.pg, id, "category").await,
        "UTILITY"
    );
    assert_eq!(
        column::<Option<String>>(&stores.pg, id, "meta_category")
            .await
            .as_deref(),
        Some("MARKETING")
    );
    assert_eq!(
        column::<Option<DateTime<Utc>>>(&stores.pg, id, "status_changed_at").await,
        at(0)
    );
    let audit = audit_rows(&stores.pg, "template.status_changed", id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor_kind"], "SYSTEM");
    assert_eq!(audit[0]["vendor_id"], json!(vendor));
    assert_eq!(audit[0]["details"]["previous_status"], "PENDING");
    assert_eq!(audit[0]["details"]["status"], "APPROVED");
}

#[tokio::test]
async fn a_rejection_keeps_metas_reason_and_rejection_info() {
    let (stores, _) = setup().await;
    let (id, _) = submitted(&stores, "1689556908129835").await;
    let mut rejected = update("REJECTED", "1689556908129835");
    rejected.reason = Some("INVALID_FORMAT".to_owned());
    let info = json!({
        "reason": "Your template has parameters placed next to each other.",
        "recommendation": "Separate parameters with descriptive text."
    });
    rejected.rejection_info = Some(info.clone());

    let outcome = apply(&stores, at(0), &rejected).await;
    assert!(
        matches!(outcome, TemplateStatusOutcome::Applied { ref status, .. } if status == "REJECTED")
    );
    assert_eq!(
        column::<Option<String>>(&stores.pg, id, "rejection_reason")
            .await
            .as_deref(),
        Some("INVALID_FORMAT")
    );
    assert_eq!(
        column::<Option<Value>>(&stores.pg, id, "rejection_info").await,
        Some(info)
    );

    // Approved after an appeal: the rejection no longer applies.
    apply(&stores, at(60), &update("APPROVED", "1689556908129835")).await;
    assert_eq!(
        column::<Option<String>>(&stores.pg, id, "rejection_reason").await,
        None
    );
    assert_eq!(
        column::<Option<Value>>(&stores.pg, id, "rejection_info").await,
        None
    );
}

#[tokio::test]
async fn an_older_event_never_overwrites_a_newer_one_and_a_replay_is_harmless() {
    let (stores, _) = setup().await;
    let (id, _) = submitted(&stores, "424242").await;
    apply(&stores, at(100), &update("PAUSED", "424242")).await;

    // Delivered late: the approval happened before the pause.
    assert_eq!(
        apply(&stores, at(10), &update("APPROVED", "424242")).await,
        TemplateStatusOutcome::Stale
    );
    assert_eq!(column::<String>(&stores.pg, id, "status").await, "PAUSED");
    assert_eq!(
        column::<Option<DateTime<Utc>>>(&stores.pg, id, "status_changed_at").await,
        at(100)
    );

    // The same event again (Meta retries): applied, nothing changes.
    let replay = apply(&stores, at(100), &update("PAUSED", "424242")).await;
    assert!(
        matches!(replay, TemplateStatusOutcome::Applied { ref status, .. } if status == "PAUSED")
    );
    assert_eq!(column::<String>(&stores.pg, id, "status").await, "PAUSED");
    assert_eq!(
        column::<Option<DateTime<Utc>>>(&stores.pg, id, "status_changed_at").await,
        at(100)
    );
}

#[tokio::test]
async fn reinstated_means_approved_again() {
    let (stores, _) = setup().await;
    let (id, _) = submitted(&stores, "777").await;
    apply(&stores, at(0), &update("DISABLED", "777")).await;
    assert_eq!(column::<String>(&stores.pg, id, "status").await, "DISABLED");

    let outcome = apply(&stores, at(5), &update("REINSTATED", "777")).await;
    assert!(
        matches!(outcome, TemplateStatusOutcome::Applied { ref status, .. } if status == "APPROVED")
    );
    assert_eq!(column::<String>(&stores.pg, id, "status").await, "APPROVED");
    assert_eq!(
        column::<String>(&stores.pg, id, "meta_status").await,
        "REINSTATED"
    );
}

#[tokio::test]
async fn an_unknown_template_is_reported_and_nothing_changes() {
    let (stores, _) = setup().await;
    let (id, _) = submitted(&stores, "1000").await;
    let outcome = apply(&stores, at(0), &update("APPROVED", "999999")).await;
    assert_eq!(outcome, TemplateStatusOutcome::UnknownTemplate);
    assert_eq!(column::<String>(&stores.pg, id, "status").await, "PENDING");
    assert!(audit_rows(&stores.pg, "template.status_changed", id)
        .await
        .is_empty());
}

#[tokio::test]
async fn without_a_stored_meta_id_the_name_and_language_find_the_template_and_link_it() {
    let (stores, templates) = setup().await;
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    // Meta created it, but the answer to the creation call was lost.
    let template = create(&templates, &admin, "order_update").await;
    let mut approved = update("APPROVED", "5550001");
    approved.message_template_name = Some(meta_name(admin.vendor_id, "order_update"));
    approved.message_template_language = Some("en-US".to_owned());

    let outcome = apply(&stores, at(0), &approved).await;
    assert!(
        matches!(outcome, TemplateStatusOutcome::Applied { template_id, .. } if template_id == template.id)
    );
    assert_eq!(
        column::<Option<String>>(&stores.pg, template.id, "meta_template_id")
            .await
            .as_deref(),
        Some("5550001")
    );
    assert_eq!(
        column::<String>(&stores.pg, template.id, "status").await,
        "APPROVED"
    );

    // The vendor's own name is not Meta's name.
    let mut by_plain_name = update("APPROVED", "5550002");
    by_plain_name.message_template_name = Some("order_update".to_owned());
    assert_eq!(
        apply(&stores, at(1), &by_plain_name).await,
        TemplateStatusOutcome::UnknownTemplate
    );
}
