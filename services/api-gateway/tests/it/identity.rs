//! Onboarding, login, tokens, roles and hardening over real HTTP.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::client::{token, Api};

#[tokio::test]
async fn register_verify_then_read_the_vendor_with_the_token() {
    let api = Api::start().await;
    let tokens = api.onboard("owner@acme.test", "Acme Traders").await;
    assert_eq!(tokens["token_type"], "Bearer");
    let me = api.get("/v1/vendor/me", &token(&tokens)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["company_name"], "Acme Traders");
    assert_eq!(me.body["plan_type"], "SHARED");

    let wallet: (String,) = sqlx::query_as("SELECT balance::text FROM wallets")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(wallet.0.parse::<f64>().unwrap(), 0.0);
}

#[tokio::test]
async fn login_refresh_and_logout() {
    let api = Api::start().await;
    api.onboard("owner@acme.test", "Acme").await;
    let wrong = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "owner@acme.test", "password": "not the password" }),
        )
        .await;
    let unknown = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "nobody@acme.test", "password": "not the password" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body["detail"], unknown.body["detail"],
        "no enumeration"
    );

    let login = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "owner@acme.test", "password": "correct horse battery staple" }),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let refreshed = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": login.body["refresh_token"] }),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK);
    // The used refresh token again: theft detection revokes the family.
    let reused = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": login.body["refresh_token"] }),
        )
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    let newest = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": refreshed.body["refresh_token"] }),
        )
        .await;
    assert_eq!(
        newest.status,
        StatusCode::UNAUTHORIZED,
        "the whole family is revoked"
    );

    let again = api
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "owner@acme.test", "password": "correct horse battery staple" }),
        )
        .await;
    let logout = api
        .post(
            "/v1/auth/logout",
            None,
            json!({ "refresh_token": again.body["refresh_token"] }),
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let after = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": again.body["refresh_token"] }),
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_with_www_authenticate() {
    let api = Api::start().await;
    for header in [
        None,
        Some("not-a-jwt"),
        Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    ] {
        let response = api.call(Method::GET, "/v1/vendor/me", header, None).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(response.headers["www-authenticate"], "Bearer");
        assert_eq!(response.headers["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn staff_get_403_on_admin_routes() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let (staff_tokens, staff_id) = api.add_member(&admin, "staff@acme.test", "STAFF").await;
    let staff = token(&staff_tokens);

    assert_eq!(
        api.get("/v1/vendor/me", &staff).await.status,
        StatusCode::OK
    );
    assert_eq!(api.get("/v1/users", &staff).await.status, StatusCode::OK);
    let forbidden = [
        api.patch("/v1/vendor/me", &staff, json!({ "company_name": "Hijack" }))
            .await,
        api.post(
            "/v1/users",
            Some(&staff),
            json!({ "email": "x@acme.test", "role": "ADMIN" }),
        )
        .await,
        api.patch(
            &format!("/v1/users/{staff_id}"),
            &staff,
            json!({ "role": "ADMIN" }),
        )
        .await,
    ];
    for response in forbidden {
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{}", response.body);
        assert_eq!(response.body["code"], "admin_only");
    }
}

#[tokio::test]
async fn a_disabled_user_is_refused_at_once() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let (staff_tokens, staff_id) = api.add_member(&admin, "staff@acme.test", "STAFF").await;
    let staff = token(&staff_tokens);
    let disabled = api
        .patch(
            &format!("/v1/users/{staff_id}"),
            &admin,
            json!({ "status": "DISABLED" }),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    // The token is still validly signed and unexpired: the refusal comes from the session
    // check in the request's tenant transaction, on every route.
    for path in [
        "/v1/vendor/me",
        "/v1/users",
        &format!("/v1/users/{staff_id}"),
    ] {
        let refused = api.get(path, &staff).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{path}: {}",
            refused.body
        );
        assert_eq!(refused.body["code"], "token_invalid", "{path}");
    }
}

#[tokio::test]
async fn a_token_whose_role_changed_is_refused_until_refreshed() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let (staff_tokens, staff_id) = api.add_member(&admin, "staff@acme.test", "STAFF").await;
    let staff = token(&staff_tokens);
    assert_eq!(api.get("/v1/users", &staff).await.status, StatusCode::OK);
    let promoted = api
        .patch(
            &format!("/v1/users/{staff_id}"),
            &admin,
            json!({ "role": "ADMIN" }),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(
        api.get("/v1/users", &staff).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_last_admin_cannot_demote_itself() {
    let api = Api::start().await;
    let tokens = api.onboard("owner@acme.test", "Acme").await;
    let admin = token(&tokens);
    let users = api.get("/v1/users", &admin).await;
    let id = users.body["data"][0]["id"].as_str().unwrap().to_owned();
    let demoted = api
        .patch(
            &format!("/v1/users/{id}"),
            &admin,
            json!({ "role": "STAFF" }),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::CONFLICT, "{}", demoted.body);
    assert_eq!(demoted.body["code"], "last_admin");
}

#[tokio::test]
async fn vendor_profile_validation_names_each_field_and_refuses_vendor_id() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let invalid = api
        .patch(
            "/v1/vendor/me",
            &admin,
            json!({ "gstin": "NOT-A-GSTIN", "billing_email": "nope", "default_country": "India" }),
        )
        .await;
    assert_eq!(
        invalid.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        invalid.body
    );
    let fields: Vec<&str> = invalid.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in ["gstin", "billing_email", "default_country"] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    let smuggled = api
        .patch(
            "/v1/vendor/me",
            &admin,
            json!({ "vendor_id": "00000000-0000-0000-0000-000000000000" }),
        )
        .await;
    assert_eq!(smuggled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(smuggled.body["errors"][0]["field"], "vendor_id");

    let updated = api
        .patch("/v1/vendor/me", &admin, json!({ "gstin": "27aapfu0939f1zv", "default_country": "IN", "time_zone": "Asia/Kolkata" }))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["gstin"], "27AAPFU0939F1ZV");
}

#[tokio::test]
async fn auth_routes_are_rate_limited_per_ip_with_retry_after() {
    let stores = kloyst_testkit::TestStores::new().await;
    let api = Api::start_with(stores, |env| env.with("RATE_LIMIT_AUTH_PER_IP", "3/min")).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let response = api
            .post(
                "/v1/auth/login",
                None,
                json!({ "email": "a@b.test", "password": "whatever-long" }),
            )
            .await;
        statuses.push(response.status);
        last = Some(response);
    }
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    let limited = last.unwrap();
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));
    assert!(limited.headers.contains_key("ratelimit-limit"));
}

#[tokio::test]
async fn security_headers_and_cors_allow_list() {
    let stores = kloyst_testkit::TestStores::new().await;
    let api = Api::start_with(stores, |env| {
        env.with("CORS_ALLOWED_ORIGINS", "https://app.kloyst.test")
    })
    .await;
    let response = api
        .http
        .get(api.service.url("/v1/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");

    let preflight = |origin: &'static str| {
        api.http
            .request(Method::OPTIONS, api.service.url("/v1/vendor/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.kloyst.test").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.kloyst.test"
    );
    let refused = preflight("https://evil.test").await.unwrap();
    assert!(!refused
        .headers()
        .contains_key("access-control-allow-origin"));
}
