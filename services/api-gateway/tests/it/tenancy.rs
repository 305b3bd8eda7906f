//! Vendor A can never read, change or learn of vendor B's data: for every route with an id
//! in its path, B's object answers exactly as a missing one; lists never show B's rows.

use reqwest::StatusCode;
use serde_json::json;

use crate::client::{token, Api};

#[tokio::test]
async fn another_vendors_user_is_404_like_a_missing_one_and_never_listed() {
    let api = Api::start().await;
    let a = token(&api.onboard("owner@a.test", "Vendor A").await);
    let b = token(&api.onboard("owner@b.test", "Vendor B").await);
    let (_, b_staff) = api.add_member(&b, "staff@b.test", "STAFF").await;
    let missing = "00000000-0000-4000-8000-000000000000";

    let theirs = api.get(&format!("/v1/users/{b_staff}"), &a).await;
    let nobody = api.get(&format!("/v1/users/{missing}"), &a).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs.body,
        nobody.body.clone(),
        "indistinguishable from a missing user"
    );

    let change = api
        .patch(
            &format!("/v1/users/{b_staff}"),
            &a,
            json!({ "status": "DISABLED" }),
        )
        .await;
    let change_missing = api
        .patch(
            &format!("/v1/users/{missing}"),
            &a,
            json!({ "status": "DISABLED" }),
        )
        .await;
    assert_eq!(change.status, StatusCode::NOT_FOUND);
    assert_eq!(change.body, change_missing.body);
    let still_active: String = sqlx::query_scalar("SELECT status FROM users WHERE id = $1::uuid")
        .bind(&b_staff)
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(still_active, "ACTIVE");

    let listed = api.get("/v1/users", &a).await;
    let emails: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["owner@a.test"]);

    let me = api.get("/v1/vendor/me", &a).await;
    assert_eq!(me.body["company_name"], "Vendor A");
}

/// The per-vendor limit counts one vendor's calls; another vendor is not slowed by them.
#[tokio::test]
async fn the_api_limit_is_per_vendor() {
    let stores = kloyst_testkit::TestStores::new().await;
    let api = Api::start_with(stores, |env| env.with("RATE_LIMIT_API_PER_VENDOR", "3/min")).await;
    let a = token(&api.onboard("owner@a.test", "Vendor A").await);
    let b = token(&api.onboard("owner@b.test", "Vendor B").await);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(api.get("/v1/vendor/me", &a).await.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let limited = api.get("/v1/vendor/me", &a).await;
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(limited.body["code"], "rate_limited");
    let other = api.get("/v1/vendor/me", &b).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.headers["ratelimit-remaining"], "2");
}
