//! `/v1/contacts` and `/v1/contact-lists` over real HTTP: status codes, bodies, problem+json
//! shapes, and another vendor's objects answering exactly like missing ones.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{token, Api, Response};

const MISSING: &str = "00000000-0000-4000-8000-000000000000";

/// The vendor of the user with this address.
async fn vendor_of(api: &Api, email: &str) -> Uuid {
    sqlx::query_scalar("SELECT vendor_id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&api.stores.pg)
        .await
        .unwrap()
}

/// Inserts a contact of `vendor` directly (imports have their own tests); its id.
async fn contact(api: &Api, vendor: Uuid, mobile: &str, name: &str) -> String {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO contacts (vendor_id, mobile, country, attributes)
         VALUES ($1, $2, 'IN', jsonb_build_object('name', $3::text)) RETURNING id",
    )
    .bind(vendor)
    .bind(mobile)
    .bind(name)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    id.to_string()
}

async fn delete(api: &Api, path: &str, token: &str, body: Option<Value>) -> Response {
    api.call(Method::DELETE, path, Some(token), body).await
}

/// A 4xx/5xx answer is problem+json with the given status and code.
fn assert_problem(response: &Response, status: StatusCode, code: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(
        response.headers["content-type"], "application/problem+json",
        "{}",
        response.body
    );
    assert_eq!(response.body["status"], status.as_u16());
    assert_eq!(response.body["code"], code, "{}", response.body);
}

/// (field, code) of the problem's first field error.
fn first_field_error(response: &Response) -> (String, String) {
    let error = &response.body["errors"][0];
    (
        error["field"].as_str().unwrap_or_default().to_owned(),
        error["code"].as_str().unwrap_or_default().to_owned(),
    )
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn contacts_are_paged_read_patched_and_deleted() {
    let api = Api::start().await;
    let t = token(&api.onboard("owner@a.test", "Vendor A").await);
    let vendor = vendor_of(&api, "owner@a.test").await;
    let asha = contact(&api, vendor, "919800000001", "Asha Rao").await;
    contact(&api, vendor, "919800000002", "Bala").await;
    contact(&api, vendor, "14155550100", "Chen").await;

    let first = api.get("/v1/contacts?limit=2", &t).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["data"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = api
        .get(&format!("/v1/contacts?limit=2&cursor={cursor}"), &t)
        .await;
    assert_eq!(rest.status, StatusCode::OK, "{}", rest.body);
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["next_cursor"], Value::Null);

    let by_name = api.get("/v1/contacts?name_prefix=ASHA", &t).await;
    assert_eq!(ids(&by_name.body), std::slice::from_ref(&asha));
    let by_number = api
        .get("/v1/contacts?mobile_prefix=%2B91%2098&opted_out=false", &t)
        .await;
    assert_eq!(by_number.body["data"].as_array().unwrap().len(), 2);

    let shown = api.get(&format!("/v1/contacts/{asha}"), &t).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        shown.body,
        json!({
            "id": asha,
            "mobile": "919800000001",
            "country": "IN",
            "name": "Asha Rao",
            "attributes": { "name": "Asha Rao" },
            "opted_out": false,
            "opted_out_at": null,
            "opt_out_reason": null,
            "opt_out_source": null,
            "created_at": shown.body["created_at"],
            "updated_at": shown.body["updated_at"],
        })
    );

    let patched = api
        .patch(
            &format!("/v1/contacts/{asha}"),
            &t,
            json!({
                "mobile": "+91 98000 00009",
                "attributes": { "city": "Pune", "name": null },
                "opted_out": true,
                "opt_out_reason": "asked by phone",
            }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["mobile"], "919800000009");
    assert_eq!(patched.body["attributes"], json!({ "city": "Pune" }));
    assert_eq!(patched.body["name"], Value::Null);
    assert_eq!(patched.body["opted_out"], true);
    assert_eq!(patched.body["opt_out_source"], "API");
    assert_eq!(patched.body["opt_out_reason"], "asked by phone");
    assert!(patched.body["opted_out_at"].is_string());
    // The change is tagged with the request id the gateway assigned.
    let request_id = patched.headers["x-request-id"].to_str().unwrap().to_owned();
    let tagged: Option<String> = sqlx::query_scalar(
        "SELECT request_id FROM contact_changes WHERE contact_id = $1::uuid AND action = 'UPDATE'",
    )
    .bind(&asha)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(tagged.as_deref(), Some(request_id.as_str()));

    let bad_number = api
        .patch(
            &format!("/v1/contacts/{asha}"),
            &t,
            json!({ "mobile": "12" }),
        )
        .await;
    assert_problem(
        &bad_number,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(first_field_error(&bad_number).0, "mobile");
    assert!(!first_field_error(&bad_number).1.is_empty());

    let taken = api
        .patch(
            &format!("/v1/contacts/{asha}"),
            &t,
            json!({ "mobile": "+919800000002" }),
        )
        .await;
    assert_problem(&taken, StatusCode::CONFLICT, "mobile_taken");

    let unknown_field = api
        .patch(
            &format!("/v1/contacts/{asha}"),
            &t,
            json!({ "vendor_id": MISSING }),
        )
        .await;
    assert_problem(
        &unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        first_field_error(&unknown_field),
        ("vendor_id".to_owned(), "unknown_field".to_owned())
    );
    let nested = api
        .patch(
            &format!("/v1/contacts/{asha}"),
            &t,
            json!({ "attributes": { "address": { "city": "Pune" } } }),
        )
        .await;
    assert_problem(
        &nested,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(first_field_error(&nested).0, "attributes.address");

    let deleted = delete(&api, &format!("/v1/contacts/{asha}"), &t, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    let gone = api.get(&format!("/v1/contacts/{asha}"), &t).await;
    assert_problem(&gone, StatusCode::NOT_FOUND, "not_found");
    let not_an_id = api.get("/v1/contacts/not-a-uuid", &t).await;
    assert_eq!(not_an_id.status, StatusCode::BAD_REQUEST);

    let anonymous = api.call(Method::GET, "/v1/contacts", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_bad_query_parameter_is_a_422_naming_it() {
    let api = Api::start().await;
    let t = token(&api.onboard("owner@a.test", "Vendor A").await);
    for (query, field, code) in [
        ("sort=name", "sort", "unknown_field"),
        ("vendor_id=x", "vendor_id", "unknown_field"),
        ("limit=abc", "limit", "invalid_type"),
        ("limit=-1", "limit", "invalid_type"),
        ("limit=0", "limit", "out_of_range"),
        ("limit=1&limit=2", "limit", "duplicate"),
        ("opted_out=maybe", "opted_out", "invalid_type"),
        ("list_id=nope", "list_id", "invalid_type"),
        ("cursor=garbage!", "cursor", "invalid_cursor"),
        ("mobile_prefix=91abc", "mobile_prefix", "not_digits"),
    ] {
        let response = api.get(&format!("/v1/contacts?{query}"), &t).await;
        assert_problem(
            &response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
        assert_eq!(
            first_field_error(&response),
            (field.to_owned(), code.to_owned()),
            "{query}"
        );
    }
    let lists = api.get("/v1/contact-lists?page=2", &t).await;
    assert_problem(
        &lists,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(first_field_error(&lists).0, "page");
    let missing_list = api
        .get(&format!("/v1/contacts?list_id={MISSING}"), &t)
        .await;
    assert_problem(&missing_list, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn contact_lists_and_their_members() {
    let api = Api::start().await;
    let t = token(&api.onboard("owner@a.test", "Vendor A").await);
    let vendor = vendor_of(&api, "owner@a.test").await;
    let one = contact(&api, vendor, "919800000001", "One").await;
    let two = contact(&api, vendor, "919800000002", "Two").await;

    let created = api
        .post(
            "/v1/contact-lists",
            Some(&t),
            json!({ "name": "VIP", "description": "best customers" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "VIP");
    assert_eq!(created.body["description"], "best customers");
    assert_eq!(created.body["member_count"], 0);
    assert!(created.body["created_by"].is_string());
    let list = created.body["id"].as_str().unwrap().to_owned();

    let again = api
        .post("/v1/contact-lists", Some(&t), json!({ "name": "VIP" }))
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "list_name_taken");
    let nameless = api
        .post("/v1/contact-lists", Some(&t), json!({ "name": " " }))
        .await;
    assert_problem(
        &nameless,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        first_field_error(&nameless),
        ("name".into(), "required".into())
    );

    let members = format!("/v1/contact-lists/{list}/members");
    let added = api
        .post(
            &members,
            Some(&t),
            json!({ "contact_ids": [one, two, one] }),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body, json!({ "added": 2 }));
    let unknown = api
        .post(&members, Some(&t), json!({ "contact_ids": [one, MISSING] }))
        .await;
    assert_problem(
        &unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        first_field_error(&unknown),
        ("contact_ids[1]".into(), "unknown_contact".into())
    );
    let removed = delete(
        &api,
        &members,
        &t,
        Some(json!({ "contact_ids": [two, MISSING] })),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body, json!({ "removed": 1 }));

    let shown = api.get(&format!("/v1/contact-lists/{list}"), &t).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["member_count"], 1);
    let in_list = api.get(&format!("/v1/contacts?list_id={list}"), &t).await;
    assert_eq!(ids(&in_list.body), std::slice::from_ref(&one));

    api.post("/v1/contact-lists", Some(&t), json!({ "name": "Second" }))
        .await;
    let page = api.get("/v1/contact-lists?limit=1", &t).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["data"][0]["name"], "Second", "newest first");
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let next = api
        .get(&format!("/v1/contact-lists?limit=1&cursor={cursor}"), &t)
        .await;
    assert_eq!(next.body["data"][0]["name"], "VIP");
    assert_eq!(next.body["next_cursor"], Value::Null);

    let deleted = delete(&api, &format!("/v1/contact-lists/{list}"), &t, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = api.get(&format!("/v1/contact-lists/{list}"), &t).await;
    assert_problem(&gone, StatusCode::NOT_FOUND, "not_found");
    let contact_stays = api.get(&format!("/v1/contacts/{one}"), &t).await;
    assert_eq!(contact_stays.status, StatusCode::OK);
}

#[tokio::test]
async fn another_vendors_contacts_and_lists_answer_like_missing_ones() {
    let api = Api::start().await;
    let a = token(&api.onboard("owner@a.test", "Vendor A").await);
    let b = token(&api.onboard("owner@b.test", "Vendor B").await);
    let a_vendor = vendor_of(&api, "owner@a.test").await;
    let b_vendor = vendor_of(&api, "owner@b.test").await;
    let a_contact = contact(&api, a_vendor, "919800000001", "Mine").await;
    let b_contact = contact(&api, b_vendor, "919800000002", "Theirs").await;
    let a_list = api
        .post("/v1/contact-lists", Some(&a), json!({ "name": "A's" }))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_list = api
        .post("/v1/contact-lists", Some(&b), json!({ "name": "B's" }))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (theirs, kind) in [(&b_contact, "contacts"), (&b_list, "contact-lists")] {
        let path = format!("/v1/{kind}/{theirs}");
        let missing_path = format!("/v1/{kind}/{MISSING}");
        let got = api.get(&path, &a).await;
        let got_missing = api.get(&missing_path, &a).await;
        assert_problem(&got, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            got.body, got_missing.body,
            "indistinguishable from a missing one"
        );
        let deleted = delete(&api, &path, &a, None).await;
        let deleted_missing = delete(&api, &missing_path, &a, None).await;
        assert_problem(&deleted, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(deleted.body, deleted_missing.body);
    }
    let patched = api
        .patch(
            &format!("/v1/contacts/{b_contact}"),
            &a,
            json!({ "opted_out": true }),
        )
        .await;
    let patched_missing = api
        .patch(
            &format!("/v1/contacts/{MISSING}"),
            &a,
            json!({ "opted_out": true }),
        )
        .await;
    assert_problem(&patched, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(patched.body, patched_missing.body);
    let into_theirs = api
        .post(
            &format!("/v1/contact-lists/{b_list}/members"),
            Some(&a),
            json!({ "contact_ids": [a_contact] }),
        )
        .await;
    assert_problem(&into_theirs, StatusCode::NOT_FOUND, "not_found");
    let theirs_into_mine = api
        .post(
            &format!("/v1/contact-lists/{a_list}/members"),
            Some(&a),
            json!({ "contact_ids": [b_contact] }),
        )
        .await;
    assert_problem(
        &theirs_into_mine,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(
        first_field_error(&theirs_into_mine),
        ("contact_ids[0]".into(), "unknown_contact".into())
    );

    // B's objects are untouched and A sees only its own.
    let b_still = api.get(&format!("/v1/contacts/{b_contact}"), &b).await;
    assert_eq!(b_still.status, StatusCode::OK);
    assert_eq!(b_still.body["opted_out"], false);
    assert_eq!(
        api.get(&format!("/v1/contact-lists/{b_list}"), &b)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(ids(&api.get("/v1/contacts", &a).await.body), [a_contact]);
    assert_eq!(
        ids(&api.get("/v1/contacts?name_prefix=theirs", &a).await.body),
        Vec::<String>::new()
    );
    assert_eq!(ids(&api.get("/v1/contact-lists", &a).await.body), [a_list]);
}

#[tokio::test]
async fn staff_work_with_contacts_and_lists() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@a.test", "Vendor A").await);
    let (staff_tokens, _) = api.add_member(&admin, "staff@a.test", "STAFF").await;
    let staff = token(&staff_tokens);
    let vendor = vendor_of(&api, "owner@a.test").await;
    let contact = contact(&api, vendor, "919800000001", "Asha").await;

    let patched = api
        .patch(
            &format!("/v1/contacts/{contact}"),
            &staff,
            json!({ "attributes": { "tier": "gold" } }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let list = api
        .post(
            "/v1/contact-lists",
            Some(&staff),
            json!({ "name": "Staff picks" }),
        )
        .await;
    assert_eq!(list.status, StatusCode::CREATED, "{}", list.body);
    let list_id = list.body["id"].as_str().unwrap();
    let added = api
        .post(
            &format!("/v1/contact-lists/{list_id}/members"),
            Some(&staff),
            json!({ "contact_ids": [contact] }),
        )
        .await;
    assert_eq!(added.body, json!({ "added": 1 }));
    let deleted = delete(&api, &format!("/v1/contacts/{contact}"), &staff, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}
