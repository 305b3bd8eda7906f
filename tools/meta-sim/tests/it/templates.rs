use serde_json::json;

use crate::helpers::*;

fn template_updates(all: &[Received]) -> Vec<serde_json::Value> {
    all.iter()
        .filter(|r| r.field() == Some("message_template_status_update"))
        .map(|r| r.json["entry"][0]["changes"][0]["value"].clone())
        .collect()
}

fn create_body(name: &str) -> serde_json::Value {
    json!({
        "name": name,
        "language": "en_US",
        "category": "utility",
        "parameter_format": "positional",
        "components": [{"type": "body", "text": "Hi {{1}}! Your order number is {{2}}.",
                        "example": {"body_text": [["Pablo", "860198-230332"]]}}]
    })
}

#[tokio::test]
async fn created_template_is_pending_then_approved_by_webhook_and_sendable() {
    let sim = Sim::start(quiet_behaviour()).await;
    let path = format!("/v21.0/{WABA_ID}/message_templates");
    let (status, body) = sim
        .graph_post(&path, Some(TOKEN), create_body("order_confirmation"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["category"], "UTILITY");
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.bytes().all(|b| b.is_ascii_digit()));

    // Not sendable while PENDING.
    let (status, _) = sim
        .send(template_send(
            "919812345678",
            "order_confirmation",
            &["a", "b"],
        ))
        .await;
    assert_eq!(status, 404);

    let all = sim
        .receiver
        .wait_for("the review webhook", |all| {
            !template_updates(all).is_empty()
        })
        .await;
    let post = all
        .iter()
        .find(|r| r.field() == Some("message_template_status_update"))
        .unwrap();
    assert_signed(post);
    assert_eq!(post.json["object"], "whatsapp_business_account");
    assert_eq!(post.json["entry"][0]["id"], WABA_ID);
    assert!(post.json["entry"][0]["time"].is_i64());
    let value = &template_updates(&all)[0];
    assert_eq!(value["event"], "APPROVED");
    assert_eq!(value["reason"], "NONE");
    assert_eq!(
        value["message_template_id"].as_u64().unwrap().to_string(),
        id
    );
    assert_eq!(value["message_template_name"], "order_confirmation");
    assert_eq!(value["message_template_language"], "en_US");
    assert_eq!(value["message_template_category"], "UTILITY");

    let (status, body) = sim
        .send(template_send(
            "919812345678",
            "order_confirmation",
            &["a", "b"],
        ))
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, list) = sim
        .http
        .get(format!("{}{path}", sim.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200);
    let list: serde_json::Value = list.json().await.unwrap();
    assert_eq!(list["data"][0]["status"], "APPROVED");
    assert!(list["paging"].is_object());
    sim.stop().await;
}

#[tokio::test]
async fn names_with_the_marker_are_rejected_with_reason() {
    let sim = Sim::start(quiet_behaviour()).await;
    let path = format!("/v21.0/{WABA_ID}/message_templates");
    let (status, _) = sim
        .graph_post(&path, Some(TOKEN), create_body("promo_reject_me"))
        .await;
    assert_eq!(status, 200);
    let all = sim
        .receiver
        .wait_for("the rejection", |all| !template_updates(all).is_empty())
        .await;
    let value = &template_updates(&all)[0];
    assert_eq!(value["event"], "REJECTED");
    assert_eq!(value["reason"], "INVALID_FORMAT");
    assert!(value["rejection_info"]["reason"].is_string());
    assert!(value["rejection_info"]["recommendation"].is_string());
    sim.stop().await;
}

#[tokio::test]
async fn duplicate_and_invalid_names_are_refused() {
    let sim = Sim::start(quiet_behaviour()).await;
    let path = format!("/v21.0/{WABA_ID}/message_templates");
    assert_eq!(
        sim.graph_post(&path, Some(TOKEN), create_body("dup"))
            .await
            .0,
        200
    );
    let (status, error) = sim.graph_post(&path, Some(TOKEN), create_body("dup")).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], 100);
    assert_eq!(error["error"]["error_subcode"], 2388024);

    let (status, error) = sim
        .graph_post(&path, Some(TOKEN), create_body("Has Spaces"))
        .await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)));
    let (status, error) = sim.graph_post(&path, None, create_body("fine")).await;
    assert_eq!((status, error["error"]["code"].as_i64()), (401, Some(190)));
    let (status, error) = sim
        .graph_post(
            "/v21.0/42/message_templates",
            Some(TOKEN),
            create_body("fine"),
        )
        .await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)));
    sim.stop().await;
}

#[tokio::test]
async fn control_events_post_webhooks_and_change_sendability() {
    let sim = Sim::start(quiet_behaviour()).await;
    let id = sim
        .seed_template("seasonal", "MARKETING", "Sale {{1}}")
        .await;
    assert!(sim.receiver.all().is_empty(), "seeding posts nothing");

    let (status, _) = sim
        .control(
            reqwest::Method::POST,
            &format!("/_sim/templates/{id}/events"),
            json!({"event": "PAUSED"}),
        )
        .await;
    assert_eq!(status, 200);
    let all = sim
        .receiver
        .wait_for("PAUSED", |all| !template_updates(all).is_empty())
        .await;
    let value = &template_updates(&all)[0];
    assert_eq!(value["event"], "PAUSED");
    assert_eq!(value["other_info"]["title"], "FIRST_PAUSE");
    let (status, error) = sim
        .send(template_send("919800000001", "seasonal", &["x"]))
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_i64()),
        (404, Some(132001))
    );

    sim.control(
        reqwest::Method::POST,
        &format!("/_sim/templates/{id}/events"),
        json!({"event": "REINSTATED"}),
    )
    .await;
    let (status, _) = sim
        .send(template_send("919800000001", "seasonal", &["x"]))
        .await;
    assert_eq!(status, 200);

    let (status, error) = sim
        .control(
            reqwest::Method::POST,
            &format!("/_sim/templates/{id}/events"),
            json!({"event": "EXPLODED"}),
        )
        .await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)));
    let (status, _) = sim
        .control(
            reqwest::Method::POST,
            "/_sim/templates/123/events",
            json!({"event": "APPROVED"}),
        )
        .await;
    assert_eq!(status, 404);
    sim.stop().await;
}
