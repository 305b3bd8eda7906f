//! `POST /v1/messages` and `GET /v1/messages/{id}` through HTTP against the real Postgres and
//! Redis: priced and held like a one-recipient campaign, idempotent, refused clearly, and
//! sent once through the same dispatch path as a campaign.

use std::time::Duration;

use kloyst_core::VendorId;
use kloyst_testkit::eventually;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{token, Api, Response};
use crate::fixtures::{
    assert_problem, dec, fund, held, list_of, load_sample, template, vendor_of, Pipeline,
};

/// An Indian mobile as a user would type it, and as it is stored.
const TO: &str = "+91 98765 43210";
const TO_STORED: &str = "919876543210";

struct Vendor {
    token: String,
    id: VendorId,
    template: String,
}

async fn vendor(api: &Api, email: &str, company: &str) -> Vendor {
    let token = token(&api.onboard(email, company).await);
    let id = vendor_of(api, email).await;
    let template = template(api, &token, "order_update", "APPROVED").await;
    Vendor {
        token,
        id,
        template,
    }
}

/// `POST /v1/messages` with a bearer token or API key, and an Idempotency-Key when given.
async fn send(api: &Api, bearer: &str, body: Value, key: Option<&str>) -> Response {
    api.post_keyed("/v1/messages", bearer, Some(body), key)
        .await
}

fn message(template: &str, to: &str) -> Value {
    json!({ "to": to, "template_id": template, "parameters": ["Asha"] })
}

/// The India marketing price the quote shows for one recipient.
async fn india_price(api: &Api, v: &Vendor) -> Decimal {
    let list = list_of(api, &v.token, v.id, "One", "91", &[(Some("IN"), false)]).await;
    let quoted = api
        .post(
            "/v1/campaigns/quote",
            Some(&v.token),
            json!({ "template_id": v.template, "list_id": list }),
        )
        .await;
    assert_eq!(quoted.status, StatusCode::OK, "{}", quoted.body);
    dec(&quoted.body["total"])
}

#[tokio::test]
async fn a_message_is_priced_held_and_sent_once_through_the_campaign_path() {
    let api = Api::start().await;
    load_sample(&api).await;
    let v = vendor(&api, "owner@acme.test", "Acme").await;
    fund(&api, v.id, Decimal::from(100)).await;
    let price = india_price(&api, &v).await;
    assert!(price > Decimal::ZERO);
    let pipeline = Pipeline::start(&api, 50).await;

    let accepted = send(&api, &v.token, message(&v.template, TO), Some("order-42")).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    assert_eq!(accepted.body["status"], "QUEUED");
    assert_eq!(accepted.body["to"], TO_STORED);
    assert_eq!(accepted.body["price"]["country"], "IN");
    assert_eq!(accepted.body["price"]["currency"], "INR");
    assert_eq!(dec(&accepted.body["price"]["price"]), price);
    let id = accepted.body["id"].as_str().unwrap().to_owned();

    let sent = eventually(Duration::from_secs(30), || async {
        let shown = api.get(&format!("/v1/messages/{id}"), &v.token).await;
        (shown.body["status"] == "SENT").then_some(shown.body)
    })
    .await;
    let Some(sent) = sent else {
        let shown = api.get(&format!("/v1/messages/{id}"), &v.token).await;
        panic!("the message is not sent: {}", shown.body);
    };
    let wamid = sent["wa_message_id"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."), "{sent}");
    assert_eq!(dec(&sent["quoted_price"]), price);
    assert!(sent["sent_at"].is_string(), "{sent}");

    // A retry after the send: the first answer, with the status now; nothing new is sent.
    let retried = send(&api, &v.token, message(&v.template, TO), Some("order-42")).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.headers["idempotent-replayed"], "true");
    assert_eq!(retried.body["id"], id.as_str());
    assert_eq!(retried.body["status"], "SENT");

    // Completed like a campaign, and the simulator saw one send to the number.
    let completed = eventually(Duration::from_secs(30), || async {
        let shown = api.get(&format!("/v1/campaigns/{id}"), &v.token).await;
        (shown.body["status"] == "COMPLETED").then_some(shown.body)
    })
    .await
    .expect("the single message's campaign completes");
    assert_eq!(completed["kind"], "SINGLE");
    let sends = pipeline.sends(100).await;
    // We send `to` as +E.164.
    let to_number: Vec<&Value> = sends
        .iter()
        .filter(|s| s["to"] == format!("+{TO_STORED}").as_str())
        .collect();
    assert_eq!(to_number.len(), 1, "{sends:?}");
    assert_eq!(to_number[0]["wamid"], wamid.as_str());
    let logged = api
        .get(&format!("/v1/messages?campaign_id={id}"), &v.token)
        .await;
    assert_eq!(logged.body["data"][0]["wa_message_id"], wamid.as_str());

    // The hold stays until the delivery statuses settle what Meta charged.
    assert_eq!(held(&api, v.id).await, price);
    pipeline.stop().await;
}

#[tokio::test]
async fn a_message_holds_its_price_and_a_wallet_that_cannot_cover_it_is_refused() {
    let api = Api::start().await;
    load_sample(&api).await;
    let v = vendor(&api, "owner@acme.test", "Acme").await;
    let price = india_price(&api, &v).await;

    let refused = send(&api, &v.token, message(&v.template, TO), None).await;
    assert_problem(&refused, StatusCode::PAYMENT_REQUIRED, "insufficient_funds");
    assert_eq!(dec(&refused.body["shortfall"]), price);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns WHERE kind = 'SINGLE'")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing is kept of a refused message");

    fund(&api, v.id, price).await;
    let accepted = send(&api, &v.token, message(&v.template, TO), None).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    assert_eq!(held(&api, v.id).await, price);
    // The wallet is now fully held: a second message cannot be covered.
    let second = send(
        &api,
        &v.token,
        message(&v.template, "+91 98765 43211"),
        None,
    )
    .await;
    assert_problem(&second, StatusCode::PAYMENT_REQUIRED, "insufficient_funds");

    // Queued with its recipient and dispatch job, as a launch would be.
    let id = Uuid::parse_str(accepted.body["id"].as_str().unwrap()).unwrap();
    let (kind, status, total, pending): (String, String, i32, i32) = sqlx::query_as(
        "SELECT kind, status, total_count, pending_count FROM campaigns WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(
        (kind.as_str(), status.as_str(), total, pending),
        ("SINGLE", "QUEUED", 1, 1)
    );
    let (mobile, country, params): (String, String, Value) = sqlx::query_as(
        "SELECT mobile, country, params FROM campaign_recipients WHERE campaign_id = $1 AND seq = 1",
    )
    .bind(id)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!((mobile.as_str(), country.as_str()), (TO_STORED, "IN"));
    assert_eq!(params, json!(["Asha"]));
    let jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE payload::text LIKE '%' || $1 || '%'",
    )
    .bind(id.to_string())
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(jobs, 1, "one dispatch job");
}

#[tokio::test]
async fn an_idempotency_key_answers_the_first_message_and_refuses_another() {
    let api = Api::start().await;
    load_sample(&api).await;
    let v = vendor(&api, "owner@acme.test", "Acme").await;
    fund(&api, v.id, Decimal::from(100)).await;

    let first = send(&api, &v.token, message(&v.template, TO), Some("k-1")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    // The same number written another way is the same message.
    let again = send(
        &api,
        &v.token,
        message(&v.template, "919876543210"),
        Some("k-1"),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["price"], first.body["price"]);
    let other = send(
        &api,
        &v.token,
        message(&v.template, "+91 98765 43211"),
        Some("k-1"),
    )
    .await;
    assert_problem(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    let bad_key = send(&api, &v.token, message(&v.template, TO), Some("é")).await;
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST, "{}", bad_key.body);

    // Concurrent retries of one key create one message.
    let racing = futures::future::join_all(
        (0..6).map(|_| send(&api, &v.token, message(&v.template, TO), Some("k-2"))),
    )
    .await;
    let mut ids: Vec<&Value> = racing.iter().map(|r| &r.body["id"]).collect();
    assert!(
        racing.iter().all(|r| r.status.is_success()),
        "{:?}",
        racing.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    ids.dedup();
    assert_eq!(ids.len(), 1);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns WHERE kind = 'SINGLE'")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test]
async fn bad_messages_are_refused_with_the_reason() {
    let api = Api::start().await;
    load_sample(&api).await;
    let v = vendor(&api, "owner@acme.test", "Acme").await;
    fund(&api, v.id, Decimal::from(100)).await;
    let field = |r: &Response| {
        r.body["errors"][0]["field"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };

    let not_a_number = send(&api, &v.token, message(&v.template, "call me"), None).await;
    assert_problem(
        &not_a_number,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(field(&not_a_number), "to");
    // A country the sample card does not price (a non-geographic +800 number).
    let unpriced = send(&api, &v.token, message(&v.template, "+800 1234 5678"), None).await;
    assert_problem(
        &unpriced,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(field(&unpriced), "to");

    let no_params = send(
        &api,
        &v.token,
        json!({ "to": TO, "template_id": v.template }),
        None,
    )
    .await;
    assert_problem(
        &no_params,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(field(&no_params), "parameters.1");
    let wrong_shape = send(
        &api,
        &v.token,
        json!({ "to": TO, "template_id": v.template, "parameters": "Asha" }),
        None,
    )
    .await;
    assert_problem(
        &wrong_shape,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let unknown_field = send(
        &api,
        &v.token,
        json!({ "to": TO, "template_id": v.template, "parameters": ["Asha"], "from": "x" }),
        None,
    )
    .await;
    assert_eq!(
        unknown_field.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown_field.body
    );
    assert!(
        unknown_field.body.to_string().contains("from"),
        "{}",
        unknown_field.body
    );

    let pending = template(&api, &v.token, "pending_one", "PENDING").await;
    let not_approved = send(&api, &v.token, message(&pending, TO), None).await;
    assert_problem(&not_approved, StatusCode::CONFLICT, "template_not_approved");
    let missing = send(
        &api,
        &v.token,
        message(&Uuid::new_v4().to_string(), TO),
        None,
    )
    .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "template_not_found");

    // A contact who opted out is not messaged.
    sqlx::query(
        "INSERT INTO contacts (vendor_id, mobile, country, opted_out, opted_out_at)
         VALUES ($1, $2, 'IN', true, now())",
    )
    .bind(v.id.as_uuid())
    .bind(TO_STORED)
    .execute(&api.stores.pg)
    .await
    .unwrap();
    let opted_out = send(&api, &v.token, message(&v.template, TO), None).await;
    assert_problem(&opted_out, StatusCode::CONFLICT, "recipient_opted_out");

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM campaigns")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    assert_eq!(held(&api, v.id).await, Decimal::ZERO);
}

#[tokio::test]
async fn attributes_are_read_from_the_contact_with_that_number() {
    let api = Api::start().await;
    load_sample(&api).await;
    let v = vendor(&api, "owner@acme.test", "Acme").await;
    fund(&api, v.id, Decimal::from(100)).await;
    sqlx::query(
        "INSERT INTO contacts (vendor_id, mobile, country, attributes)
         VALUES ($1, $2, 'IN', '{\"name\": \"Ravi\"}')",
    )
    .bind(v.id.as_uuid())
    .bind(TO_STORED)
    .execute(&api.stores.pg)
    .await
    .unwrap();
    let by_attribute = json!({ "1": { "attribute": "name" } });
    let accepted = send(
        &api,
        &v.token,
        json!({ "to": TO, "template_id": v.template, "parameters": by_attribute }),
        None,
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let params: Value =
        sqlx::query_scalar("SELECT params FROM campaign_recipients WHERE campaign_id = $1::uuid")
            .bind(accepted.body["id"].as_str().unwrap())
            .fetch_one(&api.stores.pg)
            .await
            .unwrap();
    assert_eq!(params, json!(["Ravi"]));

    // A number that is no contact has no attributes: without a fallback it cannot render.
    let stranger = send(
        &api,
        &v.token,
        json!({ "to": "+91 98765 43211", "template_id": v.template, "parameters": by_attribute }),
        None,
    )
    .await;
    assert_problem(
        &stranger,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(stranger.body["errors"][0]["code"], "attribute_missing");
}

#[tokio::test]
async fn a_message_is_seen_by_its_vendor_only_and_campaigns_are_not_messages() {
    let api = Api::start().await;
    load_sample(&api).await;
    let a = vendor(&api, "owner@acme.test", "Acme").await;
    let b = vendor(&api, "owner@globex.test", "Globex").await;
    fund(&api, a.id, Decimal::from(100)).await;
    let accepted = send(&api, &a.token, message(&a.template, TO), None).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let id = accepted.body["id"].as_str().unwrap();

    let shown = api.get(&format!("/v1/messages/{id}"), &a.token).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["status"], "QUEUED");
    assert_eq!(shown.body["to"], TO_STORED);
    let hidden = api.get(&format!("/v1/messages/{id}"), &b.token).await;
    assert_problem(&hidden, StatusCode::NOT_FOUND, "message_not_found");
    // B cannot send with A's template either.
    let borrowed = send(&api, &b.token, message(&a.template, TO), None).await;
    assert_problem(&borrowed, StatusCode::NOT_FOUND, "template_not_found");

    // A bulk campaign's id is not a message's.
    let list = list_of(&api, &a.token, a.id, "One", "91", &[(Some("IN"), false)]).await;
    let launched = api
        .post(
            "/v1/campaigns/launch",
            Some(&a.token),
            json!({ "name": "Bulk", "template_id": a.template, "list_id": list,
                    "parameters": { "1": { "literal": "there" } } }),
        )
        .await;
    assert_eq!(launched.status, StatusCode::ACCEPTED, "{}", launched.body);
    let bulk = launched.body["id"].as_str().unwrap();
    let not_single = api.get(&format!("/v1/messages/{bulk}"), &a.token).await;
    assert_problem(&not_single, StatusCode::NOT_FOUND, "message_not_found");

    // The campaign list shows campaigns; single messages only when asked for.
    let campaigns = api.get("/v1/campaigns", &a.token).await;
    let ids: Vec<&str> = campaigns.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bulk]);
    let singles = api.get("/v1/campaigns?kind=single", &a.token).await;
    assert_eq!(singles.body["data"][0]["id"], id);
    assert_eq!(singles.body["data"].as_array().unwrap().len(), 1);
    let bad_kind = api.get("/v1/campaigns?kind=DRAFT", &a.token).await;
    assert_problem(
        &bad_kind,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn an_integration_sends_and_reads_with_a_scoped_api_key() {
    let api = Api::start().await;
    load_sample(&api).await;
    let v = vendor(&api, "owner@acme.test", "Acme").await;
    fund(&api, v.id, Decimal::from(100)).await;
    let create = |scopes: Value| {
        api.post(
            "/v1/api-keys",
            Some(&v.token),
            json!({ "name": "n8n", "scopes": scopes }),
        )
    };
    let sender = create(json!(["messages:send", "messages:read"])).await;
    assert_eq!(sender.status, StatusCode::CREATED, "{}", sender.body);
    let sender_key = sender.body["key"].as_str().unwrap().to_owned();
    let reader = create(json!(["messages:read"])).await;
    let reader_key = reader.body["key"].as_str().unwrap().to_owned();

    let accepted = send(&api, &sender_key, message(&v.template, TO), Some("n8n-1")).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    let id = accepted.body["id"].as_str().unwrap();
    // Audited as the key; no user created it.
    let (actor, key_id): (String, Option<Uuid>) = sqlx::query_as(
        "SELECT actor_kind, actor_api_key_id FROM audit_log WHERE action = 'message.submitted'",
    )
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(actor, "API_KEY");
    assert_eq!(
        key_id.map(|k| k.to_string()),
        sender.body["id"].as_str().map(str::to_owned)
    );

    let shown = api.get(&format!("/v1/messages/{id}"), &reader_key).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let read_only = send(&api, &reader_key, message(&v.template, TO), None).await;
    assert_problem(&read_only, StatusCode::FORBIDDEN, "scope_missing");

    let revoked = api
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/api-keys/{}", sender.body["id"].as_str().unwrap()),
            Some(&v.token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let after = send(&api, &sender_key, message(&v.template, TO), Some("n8n-2")).await;
    assert_problem(&after, StatusCode::UNAUTHORIZED, "api_key_invalid");
}
