//! Creating, listing and reading templates as a vendor's user, in tenant transactions.

use kloyst_identity::Role;
use kloyst_queue::Job;
use kloyst_templates::model::TemplateFilter;
use kloyst_templates::{meta_name, SubmitTemplate, TemplatesError};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{audit_rows, column, create, input, meta, new_vendor, setup};

#[tokio::test]
async fn a_new_template_is_saved_pending_with_its_meta_name_audit_row_and_submit_job() {
    let (stores, templates) = setup().await;
    let staff = new_vendor(&stores.pg, Role::Staff).await;
    let request = meta();
    let mut given = input("order_update");
    given.category = "utility".to_owned();
    given.language = "en-US".to_owned();
    let template = templates.create(&staff, given, &request).await.unwrap();

    assert_eq!(template.name, "order_update");
    assert_eq!(template.language, "en_US");
    assert_eq!(template.category, "UTILITY");
    assert_eq!(template.status, "PENDING");
    assert_eq!(template.parameter_format, "POSITIONAL");
    assert_eq!(template.param_count, 2);
    assert_eq!(template.meta_template_id, None);
    assert_eq!(template.submitted_at, None);
    assert_eq!(template.created_by, Some(staff.user_id.as_uuid()));
    assert_eq!(template.components.0[1]["type"], "BODY");

    let stored_meta_name: String = column(&stores.pg, template.id, "meta_name").await;
    assert_eq!(stored_meta_name, meta_name(staff.vendor_id, "order_update"));
    let prefix = format!("v{}_", &staff.vendor_id.as_uuid().simple().to_string()[..8]);
    assert_eq!(stored_meta_name, format!("{prefix}order_update"));

    let (kind, payload, vendor, correlation): (String, Value, Option<Uuid>, Option<String>) =
        sqlx::query_as(
            "SELECT kind, payload, vendor_id, correlation_id FROM outbox_events WHERE stream = 'jobs'",
        )
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(kind, SubmitTemplate::KIND);
    let job: SubmitTemplate = serde_json::from_value(payload).unwrap();
    assert_eq!(
        job,
        SubmitTemplate {
            template_id: template.id,
            vendor_id: staff.vendor_id
        }
    );
    assert_eq!(vendor, Some(staff.vendor_id.as_uuid()));
    assert_eq!(correlation, request.request_id);

    let audit = audit_rows(&stores.pg, "template.created", template.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor_user_id"], json!(staff.user_id));
    assert_eq!(audit[0]["details"]["name"], "order_update");
}

#[tokio::test]
async fn the_same_name_and_language_is_a_conflict_for_one_vendor_only() {
    let (stores, templates) = setup().await;
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    create(&templates, &admin, "welcome").await;

    let again = templates.create(&admin, input("welcome"), &meta()).await;
    assert!(matches!(again, Err(TemplatesError::NameTaken)), "{again:?}");

    let mut other_language = input("welcome");
    other_language.language = "pt-BR".to_owned();
    let portuguese = templates
        .create(&admin, other_language, &meta())
        .await
        .unwrap();
    assert_eq!(portuguese.language, "pt_BR");

    let other_vendor = new_vendor(&stores.pg, Role::Admin).await;
    create(&templates, &other_vendor, "welcome").await;

    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE kind = 'templates.submit'")
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!(jobs, 3, "no job for the refused template");
}

#[tokio::test]
async fn an_invalid_template_is_refused_field_by_field_and_nothing_is_saved() {
    let (stores, templates) = setup().await;
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    let mut bad = input("Order Update");
    bad.components[1] = json!({ "type": "BODY", "text": "Hi {{1}}, order {{3}} shipped today", "example": { "body_text": [["a", "b"]] } });
    bad.components[2] = json!({ "type": "FOOTER", "text": "Reply {{1}}" });
    let Err(TemplatesError::Invalid(errors)) = templates.create(&admin, bad, &meta()).await else {
        panic!("expected a validation error");
    };
    let fields: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.field.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("name", "invalid_name"),
            ("components[1].text", "placeholder_gap"),
            ("components[2].text", "placeholder_not_allowed"),
        ]
    );
    let saved: i64 = sqlx::query_scalar("SELECT count(*) FROM templates")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events")
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!((saved, jobs), (0, 0));
}

#[tokio::test]
async fn lists_page_newest_first_and_filter_by_status_category_and_name() {
    let (stores, templates) = setup().await;
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    let mut created = Vec::new();
    for name in [
        "order_shipped",
        "order_delivered",
        "promo_diwali",
        "otp_login",
        "order_late",
    ] {
        let mut given = input(name);
        if name.starts_with("promo") {
            given.category = "MARKETING".to_owned();
        }
        created.push(templates.create(&admin, given, &meta()).await.unwrap().id);
    }
    sqlx::query("UPDATE templates SET status = 'APPROVED' WHERE id = $1")
        .bind(created[1])
        .execute(&stores.pg)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = templates
            .list(
                &admin,
                TemplateFilter {
                    limit: Some(2),
                    cursor: cursor.take(),
                    ..TemplateFilter::default()
                },
            )
            .await
            .unwrap();
        assert!(page.data.len() <= 2);
        seen.extend(page.data.iter().map(|t| t.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<Uuid> = created.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);

    let names = |filter: TemplateFilter| {
        let templates = templates.clone();
        let admin = admin.clone();
        async move {
            templates
                .list(&admin, filter)
                .await
                .unwrap()
                .data
                .into_iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(TemplateFilter {
            status: Some("approved".into()),
            ..TemplateFilter::default()
        })
        .await,
        ["order_delivered"]
    );
    assert_eq!(
        names(TemplateFilter {
            category: Some("MARKETING".into()),
            ..TemplateFilter::default()
        })
        .await,
        ["promo_diwali"]
    );
    assert_eq!(
        names(TemplateFilter {
            name: Some("order_".into()),
            status: Some("PENDING".into()),
            ..TemplateFilter::default()
        })
        .await,
        ["order_late", "order_shipped"]
    );
    // `_` is not a wildcard: no name starts with "order_x".
    assert!(names(TemplateFilter {
        name: Some("order_x".into()),
        ..TemplateFilter::default()
    })
    .await
    .is_empty());

    let invalid = templates
        .list(
            &admin,
            TemplateFilter {
                status: Some("LIVE".into()),
                cursor: Some("zz".into()),
                ..TemplateFilter::default()
            },
        )
        .await;
    let Err(TemplatesError::Invalid(errors)) = invalid else {
        panic!("expected a validation error");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["cursor", "status"]);
}

#[tokio::test]
async fn another_vendors_template_is_not_found_and_never_listed() {
    let (stores, templates) = setup().await;
    let owner = new_vendor(&stores.pg, Role::Admin).await;
    let stranger = new_vendor(&stores.pg, Role::Admin).await;
    let template = create(&templates, &owner, "order_update").await;

    assert_eq!(
        templates.get(&owner, template.id).await.unwrap().id,
        template.id
    );
    assert!(matches!(
        templates.get(&stranger, template.id).await,
        Err(TemplatesError::NotFound)
    ));
    assert!(matches!(
        templates.get(&owner, Uuid::new_v4()).await,
        Err(TemplatesError::NotFound)
    ));
    let listed = templates
        .list(&stranger, TemplateFilter::default())
        .await
        .unwrap();
    assert!(listed.data.is_empty());
    assert_eq!(listed.next_cursor, None);
}
