//! `POST /v1/campaigns/launch`, pause / resume / cancel, the reads and the scheduler, through
//! HTTP against the real Postgres and Redis: quote + hold + frozen recipients + dispatch job
//! in one transaction, 402s, idempotent retries, tenancy.

use std::str::FromStr;
use std::time::Instant;

use chrono::{Duration, Utc};
use kloyst_core::VendorId;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{token, Api, Response};
use crate::fixtures::{
    assert_problem, dec, fund, held, list_of, load_sample, template, vendor_of, Member, Pipeline,
};

const MISSING: &str = "00000000-0000-4000-8000-000000000000";

/// Billable: IN ×3, BR ×2, US; excluded: an opted-out IN (opted_out), a contact without a
/// country and one of a country no market knows (skipped).
const MEMBERS: [Member; 9] = [
    (Some("IN"), false),
    (Some("IN"), false),
    (Some("IN"), false),
    (Some("BR"), false),
    (Some("BR"), false),
    (Some("US"), false),
    (Some("IN"), true),
    (None, false),
    (Some("XX"), false),
];
const BILLABLE: i64 = 6;

fn body(name: &str, template: &str, list: &str) -> Value {
    json!({
        "name": name,
        "template_id": template,
        "list_id": list,
        "parameters": { "1": { "attribute": "name", "fallback": "there" } }
    })
}

/// `POST /v1/campaigns/launch`, with an Idempotency-Key when given.
async fn launch(api: &Api, token: &str, body: Value, key: Option<&str>) -> Response {
    api.post_keyed("/v1/campaigns/launch", token, Some(body), key)
        .await
}

/// The quote's total for the list, as the quote endpoint answers it.
async fn quoted_total(api: &Api, token: &str, template: &str, list: &str) -> Decimal {
    let quoted = api
        .post(
            "/v1/campaigns/quote",
            Some(token),
            json!({ "template_id": template, "list_id": list }),
        )
        .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.body);
    dec(&quoted.body["total"])
}

async fn scalar_i64(api: &Api, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(Uuid::parse_str(id).unwrap())
        .fetch_one(&api.stores.pg)
        .await
        .unwrap()
}

async fn dispatch_jobs(api: &Api, campaign: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events
          WHERE kind = 'campaign.dispatch' AND payload->>'campaign_id' = $1",
    )
    .bind(campaign)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap()
}

/// A vendor with the sample card, an APPROVED template and a list of [`MEMBERS`].
struct Setup {
    token: String,
    vendor: VendorId,
    template: String,
    list: String,
}

async fn setup(api: &Api, email: &str, company: &str) -> Setup {
    let token = token(&api.onboard(email, company).await);
    let vendor = vendor_of(api, email).await;
    let template = template(api, &token, "diwali_sale", "APPROVED").await;
    let list = list_of(api, &token, vendor, "Everyone", "55", &MEMBERS).await;
    Setup {
        token,
        vendor,
        template,
        list,
    }
}

#[tokio::test]
async fn a_launch_freezes_the_billable_recipients_holds_the_quote_and_queues_the_dispatch() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@launch.example", "Alpha").await;
    let total = quoted_total(&api, &s.token, &s.template, &s.list).await;
    fund(&api, s.vendor, Decimal::ONE_THOUSAND).await;
    // STAFF may launch: the hold protects the money.
    let (staff, _) = api
        .add_member(&s.token, "sam@launch.example", "STAFF")
        .await;
    let staff = token(&staff);

    let launched = launch(&api, &staff, body("Diwali", &s.template, &s.list), None).await;
    assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
    let id = launched.body["id"].as_str().unwrap().to_owned();
    assert_eq!(launched.body["status"], "QUEUED");
    assert_eq!(launched.body["name"], "Diwali");
    assert_eq!(launched.body["scheduled_at"], Value::Null);
    assert_eq!(dec(&launched.body["quote"]["total"]), total);
    assert_eq!(launched.body["quote"]["recipients"]["billable"], BILLABLE);

    // Recipients: dense 1..N, none opted out, none without a priced country.
    let seqs: Vec<i32> = sqlx::query_scalar(
        "SELECT r.seq FROM campaign_recipients r JOIN contacts c ON c.id = r.contact_id
          WHERE r.campaign_id = $1::uuid AND r.status = 'PENDING' AND NOT c.opted_out
            AND r.mobile = c.mobile AND r.country IN ('IN', 'BR', 'US')
          ORDER BY r.seq",
    )
    .bind(&id)
    .fetch_all(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(seqs, (1..=BILLABLE as i32).collect::<Vec<_>>());
    let all = scalar_i64(
        &api,
        "SELECT count(*) FROM campaign_recipients WHERE campaign_id = $1",
        &id,
    )
    .await;
    assert_eq!(all, BILLABLE);

    // The hold: exactly the quote, on the wallet and as the campaign's hold.
    assert_eq!(held(&api, s.vendor).await, total);
    let (amount, status): (Decimal, String) =
        sqlx::query_as("SELECT amount, status FROM wallet_holds WHERE campaign_id = $1::uuid")
            .bind(&id)
            .fetch_one(&api.stores.pg)
            .await
            .unwrap();
    assert_eq!((amount, status.as_str()), (total, "ACTIVE"));
    assert_eq!(dispatch_jobs(&api, &id).await, 1);
    let audited = scalar_i64(
        &api,
        "SELECT count(*) FROM audit_log WHERE action = 'campaign.launched' AND target_id = $1::uuid::text",
        &id,
    )
    .await;
    assert_eq!(audited, 1);

    // The live view.
    let shown = api.get(&format!("/v1/campaigns/{id}"), &s.token).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let counters = &shown.body["counters"];
    assert_eq!(counters["total"], BILLABLE);
    assert_eq!(counters["pending"], BILLABLE);
    assert_eq!(counters["opted_out"], 1);
    assert_eq!(counters["skipped"], 2);
    assert_eq!(counters["sent"], 0);
    assert_eq!(dec(&shown.body["quoted_cost"]), total);
    assert_eq!(dec(&shown.body["actual_cost"]), Decimal::ZERO);
    assert_eq!(shown.body["progress_percent"], 0.0);
    assert_eq!(shown.body["status"], "QUEUED");
    assert_eq!(
        shown.body["parameters"]["1"]["attribute"], "name",
        "{}",
        shown.body
    );

    // Later list changes do not alter the frozen recipients.
    let before: Vec<(i32, Uuid)> = sqlx::query_as(
        "SELECT seq, contact_id FROM campaign_recipients WHERE campaign_id = $1::uuid ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(&api.stores.pg)
    .await
    .unwrap();
    let _more = list_of(&api, &s.token, s.vendor, "More", "66", &MEMBERS[..2]).await;
    sqlx::query("UPDATE contacts SET opted_out = true, opted_out_at = now() WHERE vendor_id = $1")
        .bind(s.vendor.as_uuid())
        .execute(&api.stores.pg)
        .await
        .unwrap();
    sqlx::query("DELETE FROM contact_list_members WHERE list_id = $1::uuid")
        .bind(&s.list)
        .execute(&api.stores.pg)
        .await
        .unwrap();
    let after: Vec<(i32, Uuid)> = sqlx::query_as(
        "SELECT seq, contact_id FROM campaign_recipients WHERE campaign_id = $1::uuid ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_wallet_that_cannot_cover_the_quote_gets_402_with_the_shortfall() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@poor.example", "Alpha").await;
    let total = quoted_total(&api, &s.token, &s.template, &s.list).await;
    let half = (total / Decimal::TWO).round_dp(2);
    fund(&api, s.vendor, half).await;

    let refused = launch(&api, &s.token, body("Diwali", &s.template, &s.list), None).await;
    assert_problem(&refused, StatusCode::PAYMENT_REQUIRED, "insufficient_funds");
    assert_eq!(dec(&refused.body["shortfall"]), total - half);
    assert_eq!(dec(&refused.body["required"]), total);
    assert_eq!(dec(&refused.body["available"]), half);
    // Nothing was left behind.
    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    let recipients: i64 = sqlx::query_scalar("SELECT count(*) FROM campaign_recipients")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!((campaigns, recipients), (0, 0));
    assert_eq!(held(&api, s.vendor).await, Decimal::ZERO);
}

#[tokio::test]
async fn two_launches_racing_for_money_for_one_get_exactly_one_402() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@race.example", "Alpha").await;
    let total = quoted_total(&api, &s.token, &s.template, &s.list).await;
    fund(
        &api,
        s.vendor,
        (total * Decimal::from_str("1.5").unwrap()).round_dp(2),
    )
    .await;

    let (a, b) = tokio::join!(
        launch(&api, &s.token, body("First", &s.template, &s.list), None),
        launch(&api, &s.token, body("Second", &s.template, &s.list), None),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::PAYMENT_REQUIRED],
        "{} / {}",
        a.body,
        b.body
    );
    let refused = if a.status == StatusCode::PAYMENT_REQUIRED {
        &a
    } else {
        &b
    };
    assert_problem(refused, StatusCode::PAYMENT_REQUIRED, "insufficient_funds");
    assert_eq!(held(&api, s.vendor).await, total);
    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(campaigns, 1);
}

#[tokio::test]
async fn a_retried_idempotency_key_answers_the_first_launch_and_never_creates_a_second() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@retry.example", "Alpha").await;
    fund(&api, s.vendor, Decimal::ONE_THOUSAND).await;
    let request = body("Diwali", &s.template, &s.list);

    let first = launch(&api, &s.token, request.clone(), Some("launch-42")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = launch(&api, &s.token, request.clone(), Some("launch-42")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["quote"]["total"], first.body["quote"]["total"]);

    let other = launch(
        &api,
        &s.token,
        body("Another name", &s.template, &s.list),
        Some("launch-42"),
    )
    .await;
    assert_problem(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );

    // Concurrent retries of a new key: one campaign, both answers name it.
    let (a, b) = tokio::join!(
        launch(
            &api,
            &s.token,
            body("Sale", &s.template, &s.list),
            Some("k-7")
        ),
        launch(
            &api,
            &s.token,
            body("Sale", &s.template, &s.list),
            Some("k-7")
        ),
    );
    assert!(
        a.status.is_success() && b.status.is_success(),
        "{} / {}",
        a.body,
        b.body
    );
    assert_eq!(a.body["id"], b.body["id"]);
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::ACCEPTED]);

    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(campaigns, 2);
    let holds: i64 = sqlx::query_scalar("SELECT count(*) FROM wallet_holds")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(holds, 2);

    let bad_key = launch(&api, &s.token, request, Some(&"k".repeat(256))).await;
    assert_problem(&bad_key, StatusCode::BAD_REQUEST, "idempotency_key_invalid");
}

#[tokio::test]
async fn launches_that_cannot_be_sent_are_refused_with_their_reason() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@refuse.example", "Alpha").await;
    fund(&api, s.vendor, Decimal::ONE_THOUSAND).await;
    let pending = template(&api, &s.token, "still_in_review", "PENDING").await;

    let not_approved = launch(&api, &s.token, body("x", &pending, &s.list), None).await;
    assert_problem(&not_approved, StatusCode::CONFLICT, "template_not_approved");
    assert!(
        not_approved.body["detail"]
            .as_str()
            .unwrap()
            .contains("PENDING"),
        "{}",
        not_approved.body
    );
    let no_template = launch(&api, &s.token, body("x", MISSING, &s.list), None).await;
    assert_problem(&no_template, StatusCode::NOT_FOUND, "template_not_found");
    let no_list = launch(&api, &s.token, body("x", &s.template, MISSING), None).await;
    assert_problem(&no_list, StatusCode::NOT_FOUND, "list_not_found");

    let mut unmapped = body("x", &s.template, &s.list);
    unmapped["parameters"] = json!({});
    let unmapped = launch(&api, &s.token, unmapped, None).await;
    assert_problem(
        &unmapped,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(unmapped.body["errors"][0]["field"], "parameters.1");

    let mut past = body("x", &s.template, &s.list);
    past["scheduled_at"] = json!((Utc::now() - Duration::minutes(10)).to_rfc3339());
    let past = launch(&api, &s.token, past, None).await;
    assert_problem(&past, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(past.body["errors"][0]["field"], "scheduled_at");
    let mut far = body("x", &s.template, &s.list);
    far["scheduled_at"] = json!((Utc::now() + Duration::days(31)).to_rfc3339());
    let far = launch(&api, &s.token, far, None).await;
    assert_problem(&far, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let nobody = list_of(
        &api,
        &s.token,
        s.vendor,
        "Opted out",
        "77",
        &[(Some("IN"), true), (None, false)],
    )
    .await;
    let empty = launch(&api, &s.token, body("x", &s.template, &nobody), None).await;
    assert_problem(&empty, StatusCode::UNPROCESSABLE_ENTITY, "no_recipients");

    let mut unknown = body("x", &s.template, &s.list);
    unknown["priority"] = json!("high");
    let unknown = launch(&api, &s.token, unknown, None).await;
    assert!(unknown.status.is_client_error(), "{}", unknown.body);

    let campaigns: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(campaigns, 0);
    assert_eq!(held(&api, s.vendor).await, Decimal::ZERO);
}

async fn act(api: &Api, token: &str, id: &str, action: &str) -> Response {
    api.post(
        &format!("/v1/campaigns/{id}/{action}"),
        Some(token),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn pause_resume_and_cancel_follow_the_lifecycle_and_cancel_releases_the_hold() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@life.example", "Alpha").await;
    fund(&api, s.vendor, Decimal::ONE_THOUSAND).await;
    let launched = launch(&api, &s.token, body("Diwali", &s.template, &s.list), None).await;
    assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
    let id = launched.body["id"].as_str().unwrap().to_owned();

    let paused = act(&api, &s.token, &id, "pause").await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert_eq!(paused.body["status"], "PAUSED");
    assert_eq!(paused.body["pause_reason"], "MANUAL");
    assert!(paused.body["paused_at"].is_string());
    assert_problem(
        &act(&api, &s.token, &id, "pause").await,
        StatusCode::CONFLICT,
        "invalid_state",
    );

    let resumed = act(&api, &s.token, &id, "resume").await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert_eq!(resumed.body["status"], "QUEUED");
    assert_eq!(resumed.body["pause_reason"], Value::Null);
    assert_eq!(
        dispatch_jobs(&api, &id).await,
        2,
        "resume enqueues a dispatch"
    );
    assert_problem(
        &act(&api, &s.token, &id, "resume").await,
        StatusCode::CONFLICT,
        "invalid_state",
    );

    // One recipient was already sent by the dispatcher: it stays SENT.
    sqlx::query(
        "UPDATE campaign_recipients SET status = 'SENT', wa_message_id = 'wamid.1',
                attempt_id = gen_random_uuid(), sending_at = now(), sent_at = now()
          WHERE campaign_id = $1::uuid AND seq = 1",
    )
    .bind(&id)
    .execute(&api.stores.pg)
    .await
    .unwrap();
    sqlx::query("UPDATE campaigns SET pending_count = pending_count - 1, sent_count = 1 WHERE id = $1::uuid")
        .bind(&id)
        .execute(&api.stores.pg)
        .await
        .unwrap();

    let cancelled = act(&api, &s.token, &id, "cancel").await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "CANCELLED");
    assert!(cancelled.body["finished_at"].is_string());
    assert_eq!(cancelled.body["counters"]["pending"], 0);
    assert_eq!(cancelled.body["counters"]["sent"], 1);
    let by_status: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM campaign_recipients WHERE campaign_id = $1::uuid
          GROUP BY status ORDER BY status",
    )
    .bind(&id)
    .fetch_all(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(
        by_status,
        [
            ("CANCELLED".to_owned(), BILLABLE - 1),
            ("SENT".to_owned(), 1)
        ]
    );
    assert_eq!(held(&api, s.vendor).await, Decimal::ZERO);
    let hold: String =
        sqlx::query_scalar("SELECT status FROM wallet_holds WHERE campaign_id = $1::uuid")
            .bind(&id)
            .fetch_one(&api.stores.pg)
            .await
            .unwrap();
    assert_eq!(hold, "CLOSED");

    for action in ["pause", "resume", "cancel"] {
        assert_problem(
            &act(&api, &s.token, &id, action).await,
            StatusCode::CONFLICT,
            "invalid_state",
        );
    }
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE target_id = $1 ORDER BY id")
            .bind(&id)
            .fetch_all(&api.stores.pg)
            .await
            .unwrap();
    assert_eq!(
        audited,
        [
            "campaign.launched",
            "campaign.paused",
            "campaign.resumed",
            "campaign.cancelled"
        ]
    );
}

#[tokio::test]
async fn the_reads_filter_and_paginate_the_vendors_own_rows() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@read.example", "Alpha").await;
    fund(&api, s.vendor, Decimal::ONE_THOUSAND).await;
    let mut ids = Vec::new();
    for name in ["One", "Two", "Three"] {
        let launched = launch(&api, &s.token, body(name, &s.template, &s.list), None).await;
        assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
        ids.push(launched.body["id"].as_str().unwrap().to_owned());
    }
    let paused = act(&api, &s.token, &ids[0], "pause").await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);

    // Campaigns, newest first, two per page.
    let page1 = api.get("/v1/campaigns?limit=2", &s.token).await;
    assert_eq!(page1.status, StatusCode::OK, "{}", page1.body);
    let names: Vec<&str> = page1.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Three", "Two"]);
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = api
        .get(&format!("/v1/campaigns?limit=2&cursor={cursor}"), &s.token)
        .await;
    assert_eq!(page2.body["data"][0]["name"], "One");
    assert_eq!(page2.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2.body["next_cursor"], Value::Null);
    let only_paused = api.get("/v1/campaigns?status=PAUSED", &s.token).await;
    assert_eq!(only_paused.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(only_paused.body["data"][0]["id"], ids[0].as_str());
    assert_problem(
        &api.get("/v1/campaigns?status=SLEEPING", &s.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // Recipients in seq order, 4 per page, and by status.
    let id = &ids[1];
    let first = api
        .get(&format!("/v1/campaigns/{id}/recipients?limit=4"), &s.token)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let seqs = |page: &Response| -> Vec<i64> {
        page.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&first), [1, 2, 3, 4]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = api
        .get(
            &format!("/v1/campaigns/{id}/recipients?limit=4&cursor={cursor}"),
            &s.token,
        )
        .await;
    assert_eq!(seqs(&rest), [5, 6]);
    assert_eq!(rest.body["next_cursor"], Value::Null);
    sqlx::query(
        "UPDATE campaign_recipients SET status = 'FAILED', error_code = 131026,
                error_message = 'Message undeliverable', retryable = false, failed_at = now()
          WHERE campaign_id = $1::uuid AND seq = 3",
    )
    .bind(id)
    .execute(&api.stores.pg)
    .await
    .unwrap();
    let failed = api
        .get(
            &format!("/v1/campaigns/{id}/recipients?status=failed"),
            &s.token,
        )
        .await;
    assert_eq!(seqs(&failed), [3]);
    assert_eq!(failed.body["data"][0]["error_code"], 131026);
    assert_eq!(failed.body["data"][0]["retryable"], false);
    assert_problem(
        &api.get(
            &format!("/v1/campaigns/{id}/recipients?status=LOST"),
            &s.token,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // Messages of the log, newest first, by campaign and status.
    for (seq, status, wamid) in [
        (1, "SENT", Some("wamid.a")),
        (2, "DELIVERED", Some("wamid.b")),
        (3, "FAILED", None),
    ] {
        sqlx::query(
            "INSERT INTO message_logs (vendor_id, campaign_id, recipient_seq, direction,
                                       recipient, wa_message_id, status, error_code)
             VALUES ($1, $2::uuid, $3, 'OUTBOUND', $4, $5, $6,
                     CASE WHEN $6 = 'FAILED' THEN 131026 END)",
        )
        .bind(s.vendor.as_uuid())
        .bind(id)
        .bind(seq)
        .bind(format!("5500000{seq:03}"))
        .bind(wamid)
        .bind(status)
        .execute(&api.stores.pg)
        .await
        .unwrap();
    }
    let messages = api
        .get(&format!("/v1/messages?campaign_id={id}&limit=2"), &s.token)
        .await;
    assert_eq!(messages.status, StatusCode::OK, "{}", messages.body);
    let statuses: Vec<&str> = messages.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["FAILED", "DELIVERED"]);
    let cursor = messages.body["next_cursor"].as_str().unwrap();
    let older = api
        .get(
            &format!("/v1/messages?campaign_id={id}&limit=2&cursor={cursor}"),
            &s.token,
        )
        .await;
    assert_eq!(older.body["data"][0]["wa_message_id"], "wamid.a");
    assert_eq!(older.body["next_cursor"], Value::Null);
    let failed = api.get("/v1/messages?status=FAILED", &s.token).await;
    assert_eq!(failed.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(failed.body["data"][0]["error_code"], 131026);
    let of_another = api
        .get(&format!("/v1/messages?campaign_id={}", ids[0]), &s.token)
        .await;
    assert_eq!(of_another.body["data"].as_array().unwrap().len(), 0);
    assert_problem(
        &api.get("/v1/messages?status=LOST", &s.token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );

    // While PROCESSING, the view measures the send rate and the ETA.
    sqlx::query(
        "UPDATE campaign_recipients SET status = 'SENT', wa_message_id = 'wamid.r' || seq,
                attempt_id = gen_random_uuid(), sending_at = now(), sent_at = now()
          WHERE campaign_id = $1::uuid AND seq IN (1, 2)",
    )
    .bind(id)
    .execute(&api.stores.pg)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE campaigns SET status = 'PROCESSING', started_at = now(), pending_count = 3,
                sent_count = 2, failed_count = 1
          WHERE id = $1::uuid",
    )
    .bind(id)
    .execute(&api.stores.pg)
    .await
    .unwrap();
    let live = api.get(&format!("/v1/campaigns/{id}"), &s.token).await;
    assert_eq!(live.body["progress_percent"], 50.0, "{}", live.body);
    let rate = live.body["send_rate"].as_f64().unwrap();
    assert!((rate - 2.0 / 60.0).abs() < 1e-9, "{}", live.body);
    assert_eq!(live.body["eta_seconds"], 90);
}

#[tokio::test]
async fn another_vendors_campaign_is_not_found_anywhere() {
    let api = Api::start().await;
    load_sample(&api).await;
    let alpha = setup(&api, "ada@alpha.example", "Alpha").await;
    fund(&api, alpha.vendor, Decimal::ONE_THOUSAND).await;
    let launched = launch(
        &api,
        &alpha.token,
        body("Diwali", &alpha.template, &alpha.list),
        None,
    )
    .await;
    assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
    let id = launched.body["id"].as_str().unwrap().to_owned();
    let beta = token(&api.onboard("bo@beta.example", "Beta").await);

    for path in [
        format!("/v1/campaigns/{id}"),
        format!("/v1/campaigns/{id}/recipients"),
    ] {
        assert_problem(
            &api.get(&path, &beta).await,
            StatusCode::NOT_FOUND,
            "campaign_not_found",
        );
    }
    for action in ["pause", "resume", "cancel"] {
        assert_problem(
            &act(&api, &beta, &id, action).await,
            StatusCode::NOT_FOUND,
            "campaign_not_found",
        );
    }
    let theirs = api.get("/v1/campaigns", &beta).await;
    assert_eq!(theirs.body["data"].as_array().unwrap().len(), 0);
    sqlx::query(
        "INSERT INTO message_logs (vendor_id, campaign_id, recipient_seq, direction, recipient,
                                   wa_message_id, status)
         VALUES ($1, $2::uuid, 1, 'OUTBOUND', '5500000001', 'wamid.x', 'SENT')",
    )
    .bind(alpha.vendor.as_uuid())
    .bind(&id)
    .execute(&api.stores.pg)
    .await
    .unwrap();
    let messages = api
        .get(&format!("/v1/messages?campaign_id={id}"), &beta)
        .await;
    assert_eq!(messages.body["data"].as_array().unwrap().len(), 0);
    let own = api.get("/v1/messages", &alpha.token).await;
    assert_eq!(own.body["data"].as_array().unwrap().len(), 1);
    // Beta's launch cannot use Alpha's template or list.
    let stolen = launch(&api, &beta, body("x", &alpha.template, &alpha.list), None).await;
    assert_problem(&stolen, StatusCode::NOT_FOUND, "template_not_found");
    // Alpha's campaign is untouched.
    let shown = api.get(&format!("/v1/campaigns/{id}"), &alpha.token).await;
    assert_eq!(shown.body["status"], "QUEUED");
}

#[tokio::test]
async fn scheduled_campaigns_start_on_time_or_fail_when_the_schedule_was_missed() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@schedule.example", "Alpha").await;
    let total = quoted_total(&api, &s.token, &s.template, &s.list).await;
    fund(&api, s.vendor, Decimal::ONE_THOUSAND).await;
    let grace = Duration::minutes(5);

    let at = Utc::now() + Duration::hours(1);
    let mut request = body("Tonight", &s.template, &s.list);
    request["scheduled_at"] = json!(at.to_rfc3339());
    let on_time = launch(&api, &s.token, request, None).await;
    assert_eq!(on_time.status, StatusCode::ACCEPTED, "{}", on_time.body);
    assert_eq!(on_time.body["status"], "SCHEDULED");
    assert!(on_time.body["scheduled_at"].is_string());
    let on_time = on_time.body["id"].as_str().unwrap().to_owned();
    assert_eq!(dispatch_jobs(&api, &on_time).await, 0);
    assert_eq!(
        held(&api, s.vendor).await,
        total,
        "the money is held at launch"
    );

    // Paused before its time, resumed before its time: back to SCHEDULED, no job yet.
    assert_eq!(
        act(&api, &s.token, &on_time, "pause").await.body["status"],
        "PAUSED"
    );
    let resumed = act(&api, &s.token, &on_time, "resume").await;
    assert_eq!(resumed.body["status"], "SCHEDULED", "{}", resumed.body);
    assert_eq!(dispatch_jobs(&api, &on_time).await, 0);

    let mut request = body("Missed", &s.template, &s.list);
    request["scheduled_at"] = json!((at - Duration::minutes(30)).to_rfc3339());
    let missed = launch(&api, &s.token, request, None).await;
    assert_eq!(missed.status, StatusCode::ACCEPTED, "{}", missed.body);
    let missed = missed.body["id"].as_str().unwrap().to_owned();
    assert_eq!(held(&api, s.vendor).await, total * Decimal::TWO);

    // Not due yet: nothing happens.
    let early = kloyst_campaigns::start_due_scheduled(&api.stores.pg, Utc::now(), grace)
        .await
        .unwrap();
    assert_eq!(early, kloyst_campaigns::SchedulerReport::default());

    // At `at` + 10 s: the one due now starts; the one due 30 minutes earlier was missed.
    let report =
        kloyst_campaigns::start_due_scheduled(&api.stores.pg, at + Duration::seconds(10), grace)
            .await
            .unwrap();
    assert_eq!(report.started, [Uuid::parse_str(&on_time).unwrap()]);
    assert_eq!(report.missed, [Uuid::parse_str(&missed).unwrap()]);

    let started = api.get(&format!("/v1/campaigns/{on_time}"), &s.token).await;
    assert_eq!(started.body["status"], "QUEUED");
    assert!(started.body["queued_at"].is_string());
    assert_eq!(dispatch_jobs(&api, &on_time).await, 1);

    let failed = api.get(&format!("/v1/campaigns/{missed}"), &s.token).await;
    assert_eq!(failed.body["status"], "FAILED");
    assert_eq!(failed.body["failure_reason"], "SCHEDULE_MISSED");
    assert!(failed.body["finished_at"].is_string());
    assert_eq!(failed.body["counters"]["pending"], 0);
    assert_eq!(dispatch_jobs(&api, &missed).await, 0);
    let cancelled = scalar_i64(
        &api,
        "SELECT count(*) FROM campaign_recipients WHERE campaign_id = $1 AND status = 'CANCELLED'",
        &missed,
    )
    .await;
    assert_eq!(cancelled, BILLABLE);
    assert_eq!(
        held(&api, s.vendor).await,
        total,
        "the missed one's hold is released"
    );

    // Run again (or by a second scheduler): nothing left to do.
    let again =
        kloyst_campaigns::start_due_scheduled(&api.stores.pg, at + Duration::seconds(20), grace)
            .await
            .unwrap();
    assert_eq!(again, kloyst_campaigns::SchedulerReport::default());
}

/// Two schedulers at once never start one campaign twice.
#[tokio::test]
async fn concurrent_schedulers_start_each_campaign_once() {
    let api = Api::start().await;
    load_sample(&api).await;
    let s = setup(&api, "ada@twice.example", "Alpha").await;
    fund(&api, s.vendor, Decimal::ONE_THOUSAND).await;
    let at = Utc::now() + Duration::hours(1);
    for n in 0..4 {
        let mut request = body(&format!("Batch {n}"), &s.template, &s.list);
        request["scheduled_at"] = json!(at.to_rfc3339());
        let launched = launch(&api, &s.token, request, None).await;
        assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
    }
    let now = at + Duration::seconds(1);
    let (a, b) = tokio::join!(
        kloyst_campaigns::start_due_scheduled(&api.stores.pg, now, Duration::minutes(5)),
        kloyst_campaigns::start_due_scheduled(&api.stores.pg, now, Duration::minutes(5)),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.started.len() + b.started.len(), 4);
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE kind = 'campaign.dispatch'")
            .fetch_one(&api.stores.pg)
            .await
            .unwrap();
    assert_eq!(jobs, 4);
}

/// The launch of a 100,000-recipient list (one `INSERT … SELECT`): measured, printed, and
/// held to the 1 s budget with a margin for a debug build on a shared machine.
#[tokio::test]
#[ignore = "slow: seeds 100,000 contacts; run with --ignored to measure"]
async fn a_100k_recipient_launch_answers_quickly() {
    let api = Api::start().await;
    load_sample(&api).await;
    let t = token(&api.onboard("ada@big.example", "Alpha").await);
    let vendor = vendor_of(&api, "ada@big.example").await;
    let template = template(&api, &t, "big_sale", "APPROVED").await;
    let list = api
        .post("/v1/contact-lists", Some(&t), json!({ "name": "Big" }))
        .await;
    let list = list.body["id"].as_str().unwrap().to_owned();
    sqlx::query(
        "WITH c AS (
             INSERT INTO contacts (vendor_id, mobile, country)
             SELECT $1, (919000000000 + n)::text, 'IN' FROM generate_series(1, 100000) n
             RETURNING id)
         INSERT INTO contact_list_members (list_id, contact_id, vendor_id)
         SELECT $2::uuid, id, $1 FROM c",
    )
    .bind(vendor.as_uuid())
    .bind(&list)
    .execute(&api.stores.pg)
    .await
    .unwrap();
    for table in ["contacts", "contact_list_members"] {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(&api.stores.pg)
            .await
            .unwrap();
    }
    fund(&api, vendor, Decimal::from(1_000_000)).await;
    let mut times = Vec::new();
    for n in 0..3 {
        let started = Instant::now();
        let launched = launch(&api, &t, body(&format!("Big {n}"), &template, &list), None).await;
        times.push(started.elapsed());
        assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
        assert_eq!(launched.body["quote"]["recipients"]["billable"], 100_000);
    }
    println!("100k-recipient launches took {times:?}");
    let best = times.iter().min().unwrap();
    assert!(best.as_millis() < 2_000, "{times:?}");
}

/// The whole path: launch over HTTP → outbox-relay → worker-pool → the simulator → COMPLETED,
/// every billable recipient sent exactly once, the live counters and message log agreeing.
#[tokio::test]
async fn a_launched_campaign_is_sent_once_to_every_recipient_and_completes() {
    use kloyst_testkit::eventually;

    let api = Api::start().await;
    load_sample(&api).await;
    let setup = setup(&api, "owner@acme.test", "Acme").await;
    fund(&api, setup.vendor, Decimal::from(10_000)).await;

    let pipeline = Pipeline::start(&api, 50).await;

    let launched = launch(
        &api,
        &setup.token,
        body("Diwali", &setup.template, &setup.list),
        None,
    )
    .await;
    assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
    let id = launched.body["id"].as_str().unwrap().to_owned();
    let done = eventually(std::time::Duration::from_secs(30), || async {
        let shown = api.get(&format!("/v1/campaigns/{id}"), &setup.token).await;
        (shown.body["status"] == "COMPLETED").then_some(shown.body)
    })
    .await
    .expect("the campaign completes");
    assert_eq!(done["counters"]["sent"], BILLABLE, "{done}");
    assert_eq!(done["counters"]["pending"], 0, "{done}");

    let sends = pipeline.sends(100).await;
    let mut recipients: Vec<&str> = sends.iter().map(|s| s["to"].as_str().unwrap()).collect();
    assert_eq!(recipients.len() as i64, BILLABLE, "{sends:?}");
    recipients.sort_unstable();
    recipients.dedup();
    assert_eq!(recipients.len() as i64, BILLABLE, "nobody twice");

    let logged = api
        .get(&format!("/v1/messages?campaign_id={id}"), &setup.token)
        .await;
    assert_eq!(
        logged.body["data"].as_array().unwrap().len() as i64,
        BILLABLE
    );
    let recipients = api
        .get(
            &format!("/v1/campaigns/{id}/recipients?status=SENT"),
            &setup.token,
        )
        .await;
    assert!(recipients.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["wa_message_id"]
            .as_str()
            .is_some_and(|w| w.starts_with("wamid."))));

    pipeline.stop().await;
}
