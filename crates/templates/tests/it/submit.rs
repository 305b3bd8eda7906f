//! The submitter against Meta's simulator (in-process on port 0, no webhooks).

use std::time::Duration;

use kloyst_identity::Role;
use kloyst_templates::{
    meta_name, SubmitError, SubmitOutcome, SubmitTemplate, TemplateSubmitter,
    TemplateSubmitterSettings,
};
use kloyst_testkit::TestStores;
use meta_sim::{Behaviour, SimSettings};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{audit_rows, column, create, new_vendor, setup};

/// The simulator, with the identity the test env gives (META_* of kloyst-testkit).
struct Sim {
    base: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Sim {
    async fn start() -> Self {
        let settings = SimSettings {
            access_token: "test-token".to_owned(),
            app_secret: "test-meta-app-secret".to_owned(),
            waba_id: "100000000000001".to_owned(),
            phone_number_id: "100000000000002".to_owned(),
            display_phone_number: "15550001234".to_owned(),
            webhook_url: None,
            behaviour: Behaviour::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { meta_sim::serve(settings, listener, shutdown).await.unwrap() }
        });
        Self {
            base,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

fn submitter(stores: &TestStores, sim: &Sim, vars: &[(&str, &str)]) -> TemplateSubmitter {
    let env = vars.iter().fold(
        stores.env().with("META_API_BASE", &sim.base),
        |env, (k, v)| env.with(k, *v),
    );
    let settings = TemplateSubmitterSettings::from_env(&env).unwrap();
    TemplateSubmitter::new(stores.pg.clone(), &settings).unwrap()
}

fn job(template: Uuid, vendor: kloyst_core::VendorId) -> SubmitTemplate {
    SubmitTemplate {
        template_id: template,
        vendor_id: vendor,
    }
}

#[tokio::test]
async fn a_template_is_created_at_meta_under_its_meta_name_and_stays_in_review() {
    let (stores, templates) = setup().await;
    let sim = Sim::start().await;
    let submitter = submitter(&stores, &sim, &[]);
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    let template = create(&templates, &admin, "order_update").await;

    let outcome = submitter
        .submit(&job(template.id, admin.vendor_id))
        .await
        .unwrap();
    let SubmitOutcome::Submitted {
        meta_template_id,
        status,
    } = outcome
    else {
        panic!("expected a submission, got {outcome:?}");
    };
    assert_eq!(status, "PENDING");
    assert_eq!(
        column::<Option<String>>(&stores.pg, template.id, "meta_template_id").await,
        Some(meta_template_id.clone())
    );
    assert_eq!(
        column::<String>(&stores.pg, template.id, "status").await,
        "PENDING"
    );
    assert_eq!(
        column::<i32>(&stores.pg, template.id, "submit_attempts").await,
        1
    );
    assert!(column::<Option<chrono::DateTime<chrono::Utc>>>(
        &stores.pg,
        template.id,
        "submitted_at"
    )
    .await
    .is_some());
    assert_eq!(
        column::<Option<String>>(&stores.pg, template.id, "meta_category")
            .await
            .as_deref(),
        Some("UTILITY")
    );

    // Linked to the shared WABA, created on first use with no vendor.
    let (waba_id, waba_vendor): (String, Option<Uuid>) = sqlx::query_as(
        "SELECT w.waba_id, w.vendor_id FROM templates t JOIN waba_accounts w ON w.id = t.waba_account_id
          WHERE t.id = $1",
    )
    .bind(template.id)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!((waba_id.as_str(), waba_vendor), ("100000000000001", None));

    // Meta knows it by the vendor-prefixed name.
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/v21.0/100000000000001/message_templates",
            sim.base
        ))
        .bearer_auth("test-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["data"][0]["name"],
        meta_name(admin.vendor_id, "order_update").as_str()
    );
    assert_eq!(listed["data"][0]["id"], meta_template_id.as_str());
    assert_eq!(
        audit_rows(&stores.pg, "template.submitted", template.id)
            .await
            .len(),
        1
    );

    // A duplicate delivery does not create it twice; a job for another vendor finds nothing.
    let again = submitter
        .submit(&job(template.id, admin.vendor_id))
        .await
        .unwrap();
    assert_eq!(again, SubmitOutcome::AlreadySubmitted);
    let stranger = new_vendor(&stores.pg, Role::Admin).await;
    assert_eq!(
        submitter
            .submit(&job(template.id, stranger.vendor_id))
            .await
            .unwrap(),
        SubmitOutcome::Missing
    );
    sim.stop().await;
}

#[tokio::test]
async fn over_the_hourly_limit_creation_waits_for_a_slot_instead_of_failing() {
    let (stores, templates) = setup().await;
    let sim = Sim::start().await;
    let submitter = submitter(&stores, &sim, &[("TEMPLATE_SUBMIT_PER_HOUR", "2")]);
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    let first = create(&templates, &admin, "first").await;
    let second = create(&templates, &admin, "second").await;
    let third = create(&templates, &admin, "third").await;
    let fourth = create(&templates, &admin, "fourth").await;

    for template in [&first, &second] {
        let outcome = submitter
            .submit(&job(template.id, admin.vendor_id))
            .await
            .unwrap();
        assert!(
            matches!(outcome, SubmitOutcome::Submitted { .. }),
            "{outcome:?}"
        );
    }
    let Err(SubmitError::RetryAfter { delay, .. }) =
        submitter.submit(&job(third.id, admin.vendor_id)).await
    else {
        panic!("expected to wait for a slot");
    };
    assert!(
        delay > Duration::from_secs(3_590) && delay <= Duration::from_secs(3_602),
        "{delay:?}"
    );
    // The next in the queue waits one slot longer (3600 s / 2 per hour).
    let Err(SubmitError::RetryAfter { delay: later, .. }) =
        submitter.submit(&job(fourth.id, admin.vendor_id)).await
    else {
        panic!("expected to wait for a slot");
    };
    assert!(
        later >= delay + Duration::from_secs(1_790),
        "{later:?} after {delay:?}"
    );
    assert_eq!(
        column::<String>(&stores.pg, third.id, "status").await,
        "PENDING"
    );
    assert_eq!(
        column::<i32>(&stores.pg, third.id, "submit_attempts").await,
        0
    );

    // An hour later the first submission has left the window.
    sqlx::query("UPDATE templates SET submitted_at = now() - interval '61 minutes' WHERE id = $1")
        .bind(first.id)
        .execute(&stores.pg)
        .await
        .unwrap();
    let outcome = submitter
        .submit(&job(third.id, admin.vendor_id))
        .await
        .unwrap();
    assert!(
        matches!(outcome, SubmitOutcome::Submitted { .. }),
        "{outcome:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_template_meta_refuses_becomes_submit_failed_with_metas_reason() {
    let (stores, templates) = setup().await;
    let sim = Sim::start().await;
    let submitter = submitter(&stores, &sim, &[]);
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    let template = create(&templates, &admin, "order_update").await;
    // Someone created the same name and language on the WABA already.
    let seeded = reqwest::Client::new()
        .post(format!("{}/_sim/templates", sim.base))
        .json(&json!({
            "name": meta_name(admin.vendor_id, "order_update"),
            "language": "en_US",
            "category": "UTILITY",
        }))
        .send()
        .await
        .unwrap();
    assert!(seeded.status().is_success());

    let outcome = submitter
        .submit(&job(template.id, admin.vendor_id))
        .await
        .unwrap();
    let SubmitOutcome::Refused { error } = outcome else {
        panic!("expected a refusal, got {outcome:?}");
    };
    assert!(error.contains("(code 100)"), "{error}");
    assert_eq!(
        column::<String>(&stores.pg, template.id, "status").await,
        "SUBMIT_FAILED"
    );
    assert_eq!(
        column::<Option<String>>(&stores.pg, template.id, "last_submit_error").await,
        Some(error)
    );
    assert_eq!(
        column::<i32>(&stores.pg, template.id, "submit_attempts").await,
        1
    );
    let audit = audit_rows(&stores.pg, "template.submit_failed", template.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor_kind"], "SYSTEM");
    assert_eq!(audit[0]["details"]["code"], 100);
    // Final: a redelivered job does not try again.
    assert_eq!(
        submitter
            .submit(&job(template.id, admin.vendor_id))
            .await
            .unwrap(),
        SubmitOutcome::AlreadySubmitted
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_refused_token_is_retried_not_failed() {
    let (stores, templates) = setup().await;
    let sim = Sim::start().await;
    let submitter = submitter(&stores, &sim, &[("META_ACCESS_TOKEN", "expired-token")]);
    let admin = new_vendor(&stores.pg, Role::Admin).await;
    let template = create(&templates, &admin, "order_update").await;

    let result = submitter.submit(&job(template.id, admin.vendor_id)).await;
    assert!(
        matches!(result, Err(SubmitError::Retry(ref reason)) if reason.contains("account problem")),
        "{result:?}"
    );
    assert_eq!(
        column::<String>(&stores.pg, template.id, "status").await,
        "PENDING"
    );
    assert_eq!(
        column::<Option<chrono::DateTime<chrono::Utc>>>(&stores.pg, template.id, "submitted_at")
            .await,
        None
    );
    assert_eq!(
        column::<i32>(&stores.pg, template.id, "submit_attempts").await,
        1
    );
    let error = column::<Option<String>>(&stores.pg, template.id, "last_submit_error")
        .await
        .unwrap_or_default();
    assert!(error.contains("(code 190)"), "{error}");
    sim.stop().await;
}
