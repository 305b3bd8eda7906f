//! `/v1/templates` over real HTTP: create (201, 422 naming the field, 409), list with
//! filters, get, and another vendor's template answering exactly like a missing one.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::client::{token, Api, Response};

fn template(name: &str) -> Value {
    json!({
        "name": name,
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            { "type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped. Thanks!",
              "example": { "body_text": [["Asha", "A-1001"]] } },
            { "type": "FOOTER", "text": "Kloyst demo shop" }
        ]
    })
}

fn assert_problem(response: &Response, status: StatusCode, code: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.headers["content-type"], "application/problem+json");
    assert_eq!(response.body["code"], code, "{}", response.body);
}

#[tokio::test]
async fn templates_are_created_listed_and_read() {
    let api = Api::start().await;
    let t = token(&api.onboard("owner@a.test", "Vendor A").await);

    let created = api
        .post("/v1/templates", Some(&t), template("order_shipped"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let body = &created.body;
    assert_eq!(body["name"], "order_shipped");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["param_count"], 2);
    assert_eq!(body["meta_template_id"], Value::Null);
    assert_eq!(body["rejection_reason"], Value::Null);
    assert_eq!(body["components"][0]["type"], "BODY");
    assert!(body["created_at"].is_string() && body["updated_at"].is_string());
    let id = body["id"].as_str().unwrap().to_owned();

    let mut marketing = template("diwali_sale");
    marketing["category"] = json!("MARKETING");
    assert_eq!(
        api.post("/v1/templates", Some(&t), marketing).await.status,
        StatusCode::CREATED
    );

    let shown = api.get(&format!("/v1/templates/{id}"), &t).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["id"], id.as_str());

    let page = api.get("/v1/templates?limit=1", &t).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["data"][0]["name"], "diwali_sale");
    let next = page.body["next_cursor"].as_str().unwrap();
    let rest = api
        .get(&format!("/v1/templates?limit=1&cursor={next}"), &t)
        .await;
    assert_eq!(rest.body["data"][0]["name"], "order_shipped");
    assert_eq!(rest.body["next_cursor"], Value::Null);

    let utility = api
        .get(
            "/v1/templates?category=utility&status=PENDING&name=order",
            &t,
        )
        .await;
    assert_eq!(utility.status, StatusCode::OK, "{}", utility.body);
    let names: Vec<&str> = utility.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["order_shipped"]);

    let bad_filter = api.get("/v1/templates?status=LIVE", &t).await;
    assert_problem(
        &bad_filter,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(bad_filter.body["errors"][0]["field"], "status");
}

#[tokio::test]
async fn invalid_and_duplicate_templates_are_refused() {
    let api = Api::start().await;
    let t = token(&api.onboard("owner@a.test", "Vendor A").await);

    let mut gap = template("order_shipped");
    gap["components"][0]["text"] = json!("Hi {{1}}, your order {{3}} has shipped. Thanks!");
    let refused = api.post("/v1/templates", Some(&t), gap).await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(refused.body["errors"][0]["field"], "components[0].text");
    assert_eq!(refused.body["errors"][0]["code"], "placeholder_gap");

    let mut unknown_field = template("order_shipped");
    unknown_field["vendor_id"] = json!("00000000-0000-4000-8000-000000000000");
    let refused = api.post("/v1/templates", Some(&t), unknown_field).await;
    assert_problem(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(refused.body["errors"][0]["field"], "vendor_id");

    assert_eq!(
        api.post("/v1/templates", Some(&t), template("order_shipped"))
            .await
            .status,
        StatusCode::CREATED
    );
    let again = api
        .post("/v1/templates", Some(&t), template("order_shipped"))
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "template_exists");

    let anonymous = api.post("/v1/templates", None, template("other")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_vendors_template_is_a_404_like_a_missing_one() {
    let api = Api::start().await;
    let owner = token(&api.onboard("owner@a.test", "Vendor A").await);
    let stranger = token(&api.onboard("owner@b.test", "Vendor B").await);
    let created = api
        .post("/v1/templates", Some(&owner), template("order_shipped"))
        .await;
    let id = created.body["id"].as_str().unwrap();

    let theirs = api.get(&format!("/v1/templates/{id}"), &stranger).await;
    let missing = api
        .get(
            "/v1/templates/00000000-0000-4000-8000-000000000000",
            &stranger,
        )
        .await;
    assert_problem(&theirs, StatusCode::NOT_FOUND, "not_found");
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(theirs.body["detail"], missing.body["detail"]);
    let listed = api.get("/v1/templates", &stranger).await;
    assert_eq!(listed.body["data"], json!([]));
}
