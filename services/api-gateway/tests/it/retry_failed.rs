//! `POST /v1/campaigns/:id/retry-failed` through HTTP against the real Postgres and Redis: a
//! launched campaign is finished by SQL with the outcomes a dispatch would leave, then its
//! retryable failures (only those) are re-targeted by a RETRY campaign, priced and held like
//! a launch, exactly once.

use std::collections::HashMap;

use kloyst_core::VendorId;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{token, Api, Response};
use crate::fixtures::{
    assert_problem, dec, fund, list_of, load_sample, template, vendor_of, Member,
};

/// Numbers are `PREFIX` + 8 digits of the member's index (see `list_of`).
const PREFIX: &str = "56";

/// Index → country: 0-3 IN, 4-5 BR, 6 US; all billable, none opted out at launch.
const MEMBERS: [Member; 7] = [
    (Some("IN"), false),
    (Some("IN"), false),
    (Some("IN"), false),
    (Some("IN"), false),
    (Some("BR"), false),
    (Some("BR"), false),
    (Some("US"), false),
];

fn mobile(index: usize) -> String {
    format!("{PREFIX}{index:08}")
}

/// A vendor with the sample card, an APPROVED one-parameter template, a list of
/// [`MEMBERS`], a campaign launched to the list (QUEUED) with exactly its price in the
/// wallet, and `funds` more.
struct Launched {
    token: String,
    vendor: VendorId,
    template: String,
    campaign: String,
    /// The launch quote's unit price by market.
    unit_price: HashMap<String, Decimal>,
}

async fn launched(api: &Api, email: &str, funds: Option<Decimal>) -> Launched {
    let token = token(&api.onboard(email, "Retry Co").await);
    let vendor = vendor_of(api, email).await;
    let template = template(api, &token, "diwali_sale", "APPROVED").await;
    let list = list_of(api, &token, vendor, "Everyone", PREFIX, &MEMBERS).await;
    // Exactly the launch's price: nothing is available after its hold unless topped up.
    let quoted = api
        .post(
            "/v1/campaigns/quote",
            Some(&token),
            json!({ "template_id": template, "list_id": list }),
        )
        .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.body);
    fund(api, vendor, dec(&quoted.body["total"])).await;
    let launch = json!({
        "name": "Diwali",
        "template_id": template,
        "list_id": list,
        "parameters": { "1": { "attribute": "name", "fallback": "there" } }
    });
    let response = api
        .post_keyed(
            "/v1/campaigns/launch",
            &token,
            Some(launch),
            Some("launch-diwali"),
        )
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    let body = response.body;
    let campaign = body["id"].as_str().unwrap().to_owned();
    if let Some(funds) = funds {
        fund(api, vendor, funds).await;
    }
    let unit_price = body["quote"]["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["market"].as_str().unwrap().to_owned(),
                dec(&m["unit_price"]),
            )
        })
        .collect();
    Launched {
        token,
        vendor,
        template,
        campaign,
        unit_price,
    }
}

async fn set_template_status(api: &Api, template: &str, status: &str) {
    sqlx::query("UPDATE templates SET status = $2 WHERE id = $1::uuid")
        .bind(template)
        .bind(status)
        .execute(&api.stores.pg)
        .await
        .unwrap();
}

async fn exec(api: &Api, sql: &str, campaign: &str) {
    sqlx::query(sql)
        .bind(Uuid::parse_str(campaign).unwrap())
        .execute(&api.stores.pg)
        .await
        .unwrap();
}

/// The campaign finished as a dispatch would leave it: index 0, 4 and 6 FAILED with a
/// retryable error; 1 FAILED for good; 2 UNKNOWN (Meta may have it); 3 SENT; 5 FAILED
/// retryable but its contact opted out since.
async fn finish_with_failures(api: &Api, campaign: &str) {
    let outcome = |index: usize, set: &str| {
        format!(
            "UPDATE campaign_recipients SET {set} WHERE campaign_id = $1 AND mobile = '{}'",
            mobile(index)
        )
    };
    let failed = |retryable: bool| {
        format!(
            "status = 'FAILED', retryable = {retryable}, error_code = 131000, failed_at = now(), \
             attempts = 1"
        )
    };
    for index in [0, 4, 5, 6] {
        exec(api, &outcome(index, &failed(true)), campaign).await;
    }
    exec(api, &outcome(1, &failed(false)), campaign).await;
    exec(
        api,
        &outcome(
            2,
            "status = 'UNKNOWN', attempt_id = gen_random_uuid(), sending_at = now(), attempts = 1",
        ),
        campaign,
    )
    .await;
    exec(
        api,
        &outcome(
            3,
            "status = 'SENT', wa_message_id = 'wamid.sent-3', sent_at = now()",
        ),
        campaign,
    )
    .await;
    sqlx::query("UPDATE contacts SET opted_out = true, opted_out_at = now() WHERE mobile = $1")
        .bind(mobile(5))
        .execute(&api.stores.pg)
        .await
        .unwrap();
    exec(
        api,
        "UPDATE campaigns SET status = 'COMPLETED', finished_at = now(), pending_count = 0 \
         WHERE id = $1",
        campaign,
    )
    .await;
}

/// `POST /v1/campaigns/{id}/retry-failed` with `body` (none: no body at all) and an
/// optional Idempotency-Key.
async fn retry(
    api: &Api,
    token: &str,
    campaign: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> Response {
    let path = format!("/v1/campaigns/{campaign}/retry-failed");
    api.post_keyed(&path, token, body, key).await
}

async fn hold_of(api: &Api, campaign: &str) -> Option<Decimal> {
    sqlx::query_scalar("SELECT amount FROM wallet_holds WHERE campaign_id = $1::uuid")
        .bind(campaign)
        .fetch_optional(&api.stores.pg)
        .await
        .unwrap()
}

async fn retries_of(api: &Api, parent: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM campaigns WHERE parent_campaign_id = $1::uuid AND kind = 'RETRY'",
    )
    .bind(parent)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap()
}

/// `(seq, mobile, status)` of a campaign's recipients, in seq order.
async fn recipients(api: &Api, campaign: &str) -> Vec<(i32, String, String)> {
    sqlx::query_as(
        "SELECT seq, mobile, status FROM campaign_recipients WHERE campaign_id = $1::uuid \
         ORDER BY seq",
    )
    .bind(campaign)
    .fetch_all(&api.stores.pg)
    .await
    .unwrap()
}

#[tokio::test]
async fn only_retryable_failures_are_retargeted_priced_held_and_never_twice() {
    let api = Api::start().await;
    load_sample(&api).await;
    let l = launched(&api, "ada@retry.example", Some(Decimal::ONE_HUNDRED)).await;
    // STAFF may retry, like the launch.
    let (staff, _) = api.add_member(&l.token, "sam@retry.example", "STAFF").await;
    let staff = token(&staff);
    finish_with_failures(&api, &l.campaign).await;

    let first = retry(&api, &staff, &l.campaign, None, None).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let child = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(first.body["status"], "QUEUED");
    assert_eq!(first.body["name"], "Diwali (retry)");
    let quote = &first.body["quote"];
    assert_eq!(quote["recipients"]["billable"], 3, "{quote}");
    assert_eq!(quote["recipients"]["opted_out"], 1, "{quote}");
    assert_eq!(quote["parent_campaign"]["id"], l.campaign.as_str());
    assert_eq!(quote["list"], Value::Null);
    // One IN, one BR and one US recipient, at the launch's unit prices.
    let expected = l.unit_price["India"] + l.unit_price["Brazil"] + l.unit_price["North America"];
    assert_eq!(dec(&quote["total"]), expected);
    assert_eq!(hold_of(&api, &child).await, Some(expected));

    // The retryable failures (index 0, 4, 6), dense from 1, in the parent's order.
    let mut parent_order: Vec<(i32, String)> = recipients(&api, &l.campaign)
        .await
        .into_iter()
        .filter(|(_, m, _)| [mobile(0), mobile(4), mobile(6)].contains(m))
        .map(|(seq, m, _)| (seq, m))
        .collect();
    parent_order.sort();
    let retried = recipients(&api, &child).await;
    assert_eq!(
        retried,
        parent_order
            .iter()
            .enumerate()
            .map(|(i, (_, m))| (
                i32::try_from(i).unwrap() + 1,
                m.clone(),
                "PENDING".to_owned()
            ))
            .collect::<Vec<_>>()
    );
    let row: (
        String,
        Option<Uuid>,
        Option<Uuid>,
        String,
        Value,
        i32,
        i32,
        i32,
    ) = sqlx::query_as(
        "SELECT kind, parent_campaign_id, list_id, template_id::text, parameters, total_count, \
                pending_count, opted_out_count FROM campaigns WHERE id = $1::uuid",
    )
    .bind(&child)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(row.0, "RETRY");
    assert_eq!(row.1, Some(Uuid::parse_str(&l.campaign).unwrap()));
    assert_eq!(row.2, None);
    assert_eq!(row.3, l.template);
    assert_eq!(row.4["1"]["attribute"], "name");
    assert_eq!((row.5, row.6, row.7), (3, 3, 1));
    // The contact snapshot is kept.
    let contacts_kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM campaign_recipients r JOIN contacts c ON c.id = r.contact_id \
          WHERE r.campaign_id = $1::uuid AND c.mobile = r.mobile AND c.country = r.country",
    )
    .bind(&child)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(contacts_kept, 3);
    let jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE kind = 'campaign.dispatch' \
          AND payload->>'campaign_id' = $1",
    )
    .bind(&child)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(jobs, 1);
    let audit: Value = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'campaign.retry_launched' \
          AND target_id = $1",
    )
    .bind(&child)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(audit["parent_campaign_id"], l.campaign.as_str());
    assert_eq!(audit["recipients"], 3);

    // Again on the same parent: everyone retryable was re-targeted already.
    let again = retry(
        &api,
        &l.token,
        &l.campaign,
        Some(json!({ "name": "Once more" })),
        None,
    )
    .await;
    assert_problem(
        &again,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_retryable_failures",
    );
    assert_eq!(retries_of(&api, &l.campaign).await, 1);

    // A retry's own failures are retried on the retry.
    exec(
        &api,
        "UPDATE campaign_recipients SET status = CASE WHEN seq = 1 THEN 'FAILED' ELSE 'SKIPPED' END, \
             retryable = (seq = 1), failed_at = now() WHERE campaign_id = $1",
        &child,
    )
    .await;
    exec(
        &api,
        "UPDATE campaigns SET status = 'COMPLETED', finished_at = now(), pending_count = 0 \
         WHERE id = $1",
        &child,
    )
    .await;
    let grandchild = retry(
        &api,
        &l.token,
        &child,
        Some(json!({ "name": "  Last call  " })),
        None,
    )
    .await;
    assert_eq!(
        grandchild.status,
        StatusCode::ACCEPTED,
        "{}",
        grandchild.body
    );
    assert_eq!(grandchild.body["name"], "Last call");
    let grandchild = grandchild.body["id"].as_str().unwrap().to_owned();
    let last = recipients(&api, &grandchild).await;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].1, retried[0].1);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_retry_and_bad_bodies_are_refused() {
    let api = Api::start().await;
    load_sample(&api).await;
    let l = launched(&api, "ada@replay.example", Some(Decimal::ONE_HUNDRED)).await;
    finish_with_failures(&api, &l.campaign).await;

    let unknown = retry(
        &api,
        &l.token,
        &l.campaign,
        Some(json!({ "nme": "x" })),
        None,
    )
    .await;
    assert_problem(
        &unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        unknown.body["errors"][0]["field"], "nme",
        "{}",
        unknown.body
    );
    let blank = retry(
        &api,
        &l.token,
        &l.campaign,
        Some(json!({ "name": " " })),
        None,
    )
    .await;
    assert_problem(
        &blank,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let bad_key = retry(&api, &l.token, &l.campaign, None, Some(&"k".repeat(256))).await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST, "{}", bad_key.body);
    assert_eq!(retries_of(&api, &l.campaign).await, 0);

    let body = json!({ "name": "Diwali again" });
    let first = retry(
        &api,
        &l.token,
        &l.campaign,
        Some(body.clone()),
        Some("retry-1"),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let held_once = hold_of(&api, first.body["id"].as_str().unwrap()).await;
    let replayed = retry(&api, &l.token, &l.campaign, Some(body), Some("retry-1")).await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.body);
    assert_eq!(replayed.headers["idempotent-replayed"], "true");
    assert_eq!(replayed.body, first.body);
    // No name: the same retry still (the key names it).
    let unnamed = retry(&api, &l.token, &l.campaign, None, Some("retry-1")).await;
    assert_eq!(unnamed.status, StatusCode::OK, "{}", unnamed.body);
    assert_eq!(unnamed.body["id"], first.body["id"]);
    assert_eq!(retries_of(&api, &l.campaign).await, 1);
    assert_eq!(
        hold_of(&api, first.body["id"].as_str().unwrap()).await,
        held_once
    );

    // The key with another name, or the launch's key: refused.
    let renamed = retry(
        &api,
        &l.token,
        &l.campaign,
        Some(json!({ "name": "Other" })),
        Some("retry-1"),
    )
    .await;
    assert_problem(
        &renamed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    let launch_key = retry(&api, &l.token, &l.campaign, None, Some("launch-diwali")).await;
    assert_problem(
        &launch_key,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    assert_eq!(retries_of(&api, &l.campaign).await, 1);
}

#[tokio::test]
async fn running_foreign_unapproved_and_unfunded_retries_are_refused() {
    let api = Api::start().await;
    load_sample(&api).await;
    // Nothing available beyond the launch's own hold.
    let l = launched(&api, "ada@refused.example", None).await;

    // Still QUEUED: its failures may still change.
    let running = retry(&api, &l.token, &l.campaign, None, None).await;
    assert_problem(&running, StatusCode::CONFLICT, "invalid_state");
    finish_with_failures(&api, &l.campaign).await;

    // Another vendor's campaign, a missing one, a malformed id.
    let other = token(&api.onboard("eve@other.example", "Other Co").await);
    let foreign = retry(&api, &other, &l.campaign, None, None).await;
    assert_problem(&foreign, StatusCode::NOT_FOUND, "campaign_not_found");
    let missing = retry(&api, &l.token, &Uuid::new_v4().to_string(), None, None).await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "campaign_not_found");
    let malformed = retry(&api, &l.token, "not-a-uuid", None, None).await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.body
    );

    // The template was paused by Meta since.
    set_template_status(&api, &l.template, "PAUSED").await;
    let paused = retry(&api, &l.token, &l.campaign, None, None).await;
    assert_problem(&paused, StatusCode::CONFLICT, "template_not_approved");
    set_template_status(&api, &l.template, "APPROVED").await;

    // 402: the wallet has nothing available; nothing is created.
    let expected = l.unit_price["India"] + l.unit_price["Brazil"] + l.unit_price["North America"];
    let poor = retry(&api, &l.token, &l.campaign, None, None).await;
    assert_problem(&poor, StatusCode::PAYMENT_REQUIRED, "insufficient_funds");
    assert_eq!(dec(&poor.body["required"]), expected, "{}", poor.body);
    assert_eq!(dec(&poor.body["shortfall"]), expected, "{}", poor.body);
    assert_eq!(retries_of(&api, &l.campaign).await, 0);

    // Funded, the same call goes through and holds exactly the price.
    fund(&api, l.vendor, expected).await;
    let funded = retry(&api, &l.token, &l.campaign, None, None).await;
    assert_eq!(funded.status, StatusCode::ACCEPTED, "{}", funded.body);
    assert_eq!(
        hold_of(&api, funded.body["id"].as_str().unwrap()).await,
        Some(expected)
    );
    let available: Decimal =
        sqlx::query_scalar("SELECT available FROM wallets WHERE vendor_id = $1")
            .bind(l.vendor.as_uuid())
            .fetch_one(&api.stores.pg)
            .await
            .unwrap();
    assert_eq!(available, Decimal::ZERO);
}
