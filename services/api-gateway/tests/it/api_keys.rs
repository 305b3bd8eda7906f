//! Vendor API keys: created by an ADMIN and shown once, stored as a hash, used by
//! integrations on the routes their scopes allow, revoked, expired, and kept per vendor.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{token, Api, Response};
use crate::fixtures::assert_problem;

/// An ADMIN's new key with these scopes: the 201 body.
async fn create_key(api: &Api, admin: &str, name: &str, scopes: &[&str]) -> Value {
    let created = api
        .post(
            "/v1/api-keys",
            Some(admin),
            json!({ "name": name, "scopes": scopes }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body
}

fn key_of(created: &Value) -> String {
    created["key"].as_str().unwrap().to_owned()
}

/// A request with the key in `X-Api-Key` (the other form is `Authorization: Bearer`).
async fn with_header_key(api: &Api, method: Method, path: &str, key: &str) -> Response {
    let response = api
        .http
        .request(method, api.service.url(path))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Response {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

async fn delete(api: &Api, path: &str, token: &str) -> Response {
    api.call(Method::DELETE, path, Some(token), None).await
}

fn assert_unauthenticated(response: &Response, code: &str) {
    assert_problem(response, StatusCode::UNAUTHORIZED, code);
    assert_eq!(response.headers["www-authenticate"], "Bearer");
}

fn field_codes(response: &Response) -> Vec<String> {
    response.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {}", response.body))
        .iter()
        .map(|e| {
            format!(
                "{}={}",
                e["field"].as_str().unwrap(),
                e["code"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_key_is_shown_once_and_only_its_hash_is_stored() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let created = api
        .post(
            "/v1/api-keys",
            Some(&admin),
            json!({ "name": "  n8n  ", "scopes": ["messages:read", "messages:send", "messages:read"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let body = &created.body;
    let key = key_of(body);
    let prefix = body["prefix"].as_str().unwrap();
    assert_eq!(key.len(), 57);
    assert!(key.starts_with(&format!("{prefix}_")), "{key} / {prefix}");
    assert!(prefix.starts_with("kly_") && prefix.len() == 16, "{prefix}");
    assert_eq!(body["name"], "n8n");
    assert_eq!(body["scopes"], json!(["messages:read", "messages:send"]));
    assert!(body["expires_at"].is_null());
    let secret = &key[17..];

    // The list shows the prefix and the status, never the key or a hash.
    let listed = api.get("/v1/api-keys", &admin).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let text = listed.body.to_string();
    assert!(!text.contains(secret), "{text}");
    let item = &listed.body["data"][0];
    assert_eq!(item["id"], body["id"]);
    assert_eq!(item["prefix"], prefix);
    assert_eq!(item["status"], "ACTIVE");
    assert!(item["last_used_at"].is_null() && item["revoked_at"].is_null());
    assert!(
        item.get("key").is_none() && item.get("key_hash").is_none(),
        "{item}"
    );
    assert!(listed.body["next_cursor"].is_null());

    // The database holds the SHA-256 of the whole key, and the secret nowhere.
    let (hash_matches, rows_with_secret): (bool, i64) = sqlx::query_as(
        "SELECT (SELECT key_hash = sha256(convert_to($1, 'UTF8')) FROM api_keys),
                (SELECT count(*) FROM api_keys a WHERE to_jsonb(a)::text LIKE '%' || $2 || '%')
              + (SELECT count(*) FROM audit_log a WHERE to_jsonb(a)::text LIKE '%' || $2 || '%')",
    )
    .bind(&key)
    .bind(secret)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert!(hash_matches);
    assert_eq!(rows_with_secret, 0);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log
          WHERE action = 'api_key.created' AND target_id = $1 AND details->>'prefix' = $2",
    )
    .bind(body["id"].as_str().unwrap())
    .bind(prefix)
    .fetch_one(&api.stores.pg)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn a_key_reads_messages_with_its_scope_through_either_header() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let reader = key_of(&create_key(&api, &admin, "reader", &["messages:read"]).await);
    let sender = key_of(&create_key(&api, &admin, "sender", &["messages:send"]).await);

    let bearer = api.get("/v1/messages", &reader).await;
    assert_eq!(bearer.status, StatusCode::OK, "{}", bearer.body);
    assert!(bearer.body["data"].is_array(), "{}", bearer.body);
    let header = with_header_key(&api, Method::GET, "/v1/messages", &reader).await;
    assert_eq!(header.status, StatusCode::OK, "{}", header.body);

    // Without the scope, and on a user-only route, a valid key is refused with 403.
    let unscoped = api.get("/v1/messages", &sender).await;
    assert_problem(&unscoped, StatusCode::FORBIDDEN, "scope_missing");
    let contacts = api.get("/v1/contacts", &reader).await;
    assert_problem(&contacts, StatusCode::FORBIDDEN, "api_key_not_allowed");
    let contacts = with_header_key(&api, Method::GET, "/v1/contacts", &reader).await;
    assert_problem(&contacts, StatusCode::FORBIDDEN, "api_key_not_allowed");
    // A key cannot manage keys either.
    let keys = with_header_key(&api, Method::GET, "/v1/api-keys", &reader).await;
    assert_problem(&keys, StatusCode::FORBIDDEN, "api_key_not_allowed");

    // Use is recorded on the key.
    let listed = api.get("/v1/api-keys", &admin).await;
    let used: Vec<(&str, bool)> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), !k["last_used_at"].is_null()))
        .collect();
    assert_eq!(used, vec![("sender", true), ("reader", true)]);

    // A JWT and a key at once is ambiguous.
    let both = api
        .http
        .get(api.service.url("/v1/messages"))
        .bearer_auth(&admin)
        .header("X-Api-Key", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn last_used_at_is_touched_at_most_once_a_minute() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let created = create_key(&api, &admin, "n8n", &["messages:read"]).await;
    let key = key_of(&created);
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let last_used = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&api.stores.pg)
        .await
        .unwrap()
    };
    assert_eq!(last_used().await, None);
    assert_eq!(api.get("/v1/messages", &key).await.status, StatusCode::OK);
    let first = last_used().await.expect("set by the first use");
    assert_eq!(api.get("/v1/messages", &key).await.status, StatusCode::OK);
    assert_eq!(
        last_used().await,
        Some(first),
        "touched twice within a minute"
    );

    // Two minutes later (moved back by hand), the next use touches it again.
    sqlx::query("UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1")
        .bind(id)
        .execute(&api.stores.pg)
        .await
        .unwrap();
    let moved = last_used().await.unwrap();
    assert_eq!(api.get("/v1/messages", &key).await.status, StatusCode::OK);
    assert!(last_used().await.unwrap() > moved);
}

#[tokio::test]
async fn revoked_expired_and_garbage_keys_get_401() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let revoked = create_key(&api, &admin, "revoked", &["messages:read"]).await;
    let expired = create_key(&api, &admin, "expired", &["messages:read"]).await;
    let revoked_key = key_of(&revoked);
    let expired_key = key_of(&expired);
    assert_eq!(
        api.get("/v1/messages", &revoked_key).await.status,
        StatusCode::OK
    );

    let path = format!("/v1/api-keys/{}", revoked["id"].as_str().unwrap());
    let deleted = delete(&api, &path, &admin).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    // Idempotent: a retried DELETE is fine, and audited once.
    assert_eq!(
        delete(&api, &path, &admin).await.status,
        StatusCode::NO_CONTENT
    );
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'api_key.revoked'")
            .fetch_one(&api.stores.pg)
            .await
            .unwrap();
    assert_eq!(audited, 1);
    assert_unauthenticated(
        &api.get("/v1/messages", &revoked_key).await,
        "api_key_invalid",
    );
    assert_unauthenticated(
        &with_header_key(&api, Method::GET, "/v1/messages", &revoked_key).await,
        "api_key_invalid",
    );

    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expired["id"].as_str().unwrap().parse::<Uuid>().unwrap())
        .execute(&api.stores.pg)
        .await
        .unwrap();
    assert_unauthenticated(
        &api.get("/v1/messages", &expired_key).await,
        "api_key_invalid",
    );

    // Garbage, and a well-formed key that was never issued, get the same answer.
    let never_issued = format!("kly_{}_{}", "A".repeat(12), "b".repeat(40));
    for garbage in [
        "kly_nope",
        "kly_",
        never_issued.as_str(),
        &revoked_key[..56],
    ] {
        assert_unauthenticated(&api.get("/v1/messages", garbage).await, "api_key_invalid");
        assert_unauthenticated(
            &with_header_key(&api, Method::GET, "/v1/messages", garbage).await,
            "api_key_invalid",
        );
    }

    let listed = api.get("/v1/api-keys", &admin).await;
    let statuses: Vec<(&str, &str)> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![("expired", "EXPIRED"), ("revoked", "REVOKED")]
    );
    assert!(!listed.body["data"][1]["revoked_at"].is_null());
}

#[tokio::test]
async fn staff_cannot_manage_keys() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let (staff_tokens, _) = api.add_member(&admin, "staff@acme.test", "STAFF").await;
    let staff = token(&staff_tokens);
    let created = create_key(&api, &admin, "n8n", &["messages:read"]).await;

    let create = api
        .post(
            "/v1/api-keys",
            Some(&staff),
            json!({ "name": "mine", "scopes": ["messages:read"] }),
        )
        .await;
    assert_problem(&create, StatusCode::FORBIDDEN, "admin_only");
    assert_problem(
        &api.get("/v1/api-keys", &staff).await,
        StatusCode::FORBIDDEN,
        "admin_only",
    );
    let path = format!("/v1/api-keys/{}", created["id"].as_str().unwrap());
    assert_problem(
        &delete(&api, &path, &staff).await,
        StatusCode::FORBIDDEN,
        "admin_only",
    );
    // The key still works.
    assert_eq!(
        api.get("/v1/messages", &key_of(&created)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn vendors_neither_see_nor_revoke_each_others_keys() {
    let api = Api::start().await;
    let admin_a = token(&api.onboard("owner@a.test", "A").await);
    let admin_b = token(&api.onboard("owner@b.test", "B").await);
    let key_a = create_key(&api, &admin_a, "a's n8n", &["messages:read"]).await;

    let listed_b = api.get("/v1/api-keys", &admin_b).await;
    assert_eq!(listed_b.status, StatusCode::OK, "{}", listed_b.body);
    assert_eq!(listed_b.body["data"], json!([]));

    let path = format!("/v1/api-keys/{}", key_a["id"].as_str().unwrap());
    assert_problem(
        &delete(&api, &path, &admin_b).await,
        StatusCode::NOT_FOUND,
        "api_key_not_found",
    );
    assert_problem(
        &delete(&api, &format!("/v1/api-keys/{}", Uuid::new_v4()), &admin_a).await,
        StatusCode::NOT_FOUND,
        "api_key_not_found",
    );
    assert_eq!(
        api.get("/v1/messages", &key_of(&key_a)).await.status,
        StatusCode::OK
    );
    let listed_a = api.get("/v1/api-keys", &admin_a).await;
    assert_eq!(listed_a.body["data"][0]["status"], "ACTIVE");
}

#[tokio::test]
async fn bad_input_is_422_naming_the_field() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let post = |body: Value| api.post("/v1/api-keys", Some(&admin), body);

    let unknown_scope =
        post(json!({ "name": "n8n", "scopes": ["messages:read", "contacts:*"] })).await;
    assert_problem(
        &unknown_scope,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(field_codes(&unknown_scope), ["scopes[1]=unknown_scope"]);

    let blank = post(json!({ "name": "   ", "scopes": [] })).await;
    assert_eq!(
        blank.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        blank.body
    );
    assert_eq!(field_codes(&blank), ["name=required", "scopes=required"]);

    let past = post(
        json!({ "name": "n8n", "scopes": ["messages:send"], "expires_at": "2020-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(
        past.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        past.body
    );
    assert_eq!(field_codes(&past), ["expires_at=not_in_future"]);

    let far = post(
        json!({ "name": "n8n", "scopes": ["messages:send"], "expires_at": "2999-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(field_codes(&far), ["expires_at=out_of_range"]);

    let smuggled = post(json!({ "name": "n8n", "scopes": ["messages:send"], "vendor_id": Uuid::new_v4().to_string() })).await;
    assert_eq!(
        smuggled.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        smuggled.body
    );
    assert_eq!(field_codes(&smuggled), ["vendor_id=unknown_field"]);

    let not_a_date =
        post(json!({ "name": "n8n", "scopes": ["messages:send"], "expires_at": "tomorrow" })).await;
    assert_eq!(
        not_a_date.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        not_a_date.body
    );
    assert_eq!(not_a_date.body["errors"][0]["field"], "expires_at");

    let bad_id = delete(&api, "/v1/api-keys/not-a-uuid", &admin).await;
    assert!(bad_id.status.is_client_error(), "{}", bad_id.body);

    // Nothing was created; a good request with a future expiry is.
    let listed = api.get("/v1/api-keys", &admin).await;
    assert_eq!(listed.body["data"], json!([]));
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let ok =
        post(json!({ "name": "n8n", "scopes": ["messages:send"], "expires_at": expires })).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert!(!ok.body["expires_at"].is_null());
}

#[tokio::test]
async fn at_most_25_active_keys_and_the_list_pages_newest_first() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let mut ids = Vec::new();
    for n in 0..25 {
        let created = create_key(&api, &admin, &format!("key {n:02}"), &["messages:send"]).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let over = api
        .post(
            "/v1/api-keys",
            Some(&admin),
            json!({ "name": "one too many", "scopes": ["messages:send"] }),
        )
        .await;
    assert_problem(&over, StatusCode::CONFLICT, "api_key_limit");

    // Pages of 10, newest first, each key once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/api-keys?limit=10&cursor={c}"),
            None => "/v1/api-keys?limit=10".to_owned(),
        };
        let page = api.get(&path, &admin).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 10);
        seen.extend(data.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let bad_cursor = api.get("/v1/api-keys?cursor=zz", &admin).await;
    assert_eq!(
        bad_cursor.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_cursor.body
    );

    // A revoked key frees its place.
    let revoked = delete(&api, &format!("/v1/api-keys/{}", ids[0]), &admin).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    create_key(&api, &admin, "replacement", &["messages:read"]).await;
}
