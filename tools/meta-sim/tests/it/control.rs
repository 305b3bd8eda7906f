use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn inbound_posts_a_signed_messages_webhook() {
    let sim = Sim::start(quiet_behaviour()).await;
    let (status, body) = sim
        .control(
            reqwest::Method::POST,
            "/_sim/inbound",
            json!({"from": "919812345678", "text": "Does it come in blue?"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let wamid = body["wamid"].as_str().unwrap().to_owned();
    let all = sim
        .receiver
        .wait_for("inbound", |all| !all.is_empty())
        .await;
    assert_signed(&all[0]);
    let value = &all[0].json["entry"][0]["changes"][0]["value"];
    assert_eq!(all[0].field(), Some("messages"));
    assert_eq!(value["contacts"][0]["wa_id"], "919812345678");
    assert!(value["contacts"][0]["profile"]["name"].is_string());
    let message = &value["messages"][0];
    assert_eq!(message["id"], wamid.as_str());
    assert_eq!(message["from"], "919812345678");
    assert_eq!(message["type"], "text");
    assert_eq!(message["text"]["body"], "Does it come in blue?");
    assert!(message["timestamp"].is_string());

    let (status, _) = sim
        .control(
            reqwest::Method::POST,
            "/_sim/inbound",
            json!({"from": "919812345678", "button_text": "STOP"}),
        )
        .await;
    assert_eq!(status, 200);
    let all = sim.receiver.wait_for("button", |all| all.len() >= 2).await;
    let button = &all[1].json["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(button["type"], "button");
    assert_eq!(button["button"]["text"], "STOP");
    let (_, webhooks) = sim.get("/_sim/webhooks").await;
    assert_eq!(webhooks["deliveries"][0]["kind"], "inbound");
    sim.stop().await;
}

#[tokio::test]
async fn behaviour_can_be_replaced_and_patched() {
    let sim = Sim::start(quiet_behaviour()).await;
    let (status, health) = sim.get("/_sim/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let (status, body) = sim
        .control(
            reqwest::Method::PUT,
            "/_sim/behaviour",
            json!({"rate_per_second": 7}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, current) = sim.get("/_sim/behaviour").await;
    assert_eq!(current["rate_per_second"], 7);
    assert_eq!(current["read_rate"], 0.5, "PUT resets the rest to defaults");

    let (status, _) = sim
        .control(
            reqwest::Method::PATCH,
            "/_sim/behaviour",
            json!({"batch_max": 3}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, current) = sim.get("/_sim/behaviour").await;
    assert_eq!(current["batch_max"], 3);
    assert_eq!(current["rate_per_second"], 7, "PATCH keeps the rest");

    let (status, error) = sim
        .control(
            reqwest::Method::PUT,
            "/_sim/behaviour",
            json!({"failed_rate": 3.0}),
        )
        .await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)));
    let (status, error) = sim
        .control(
            reqwest::Method::PUT,
            "/_sim/behaviour",
            json!({"batch_max": "many"}),
        )
        .await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)));
    sim.stop().await;
}

#[tokio::test]
async fn bad_control_input_gets_meta_shaped_errors() {
    let sim = Sim::start(quiet_behaviour()).await;
    for (path, body) in [
        ("/_sim/flood", json!({"count": "lots"})),
        ("/_sim/flood", json!({"count": 1, "statuses_per_post": 0})),
        ("/_sim/inbound", json!({"from": "12"})),
        ("/_sim/inbound", json!({"from": "919812345678"})),
        (
            "/_sim/templates",
            json!({"name": "x", "language": "en", "category": "nope"}),
        ),
    ] {
        let (status, error) = sim.control(reqwest::Method::POST, path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}");
        assert_eq!(error["error"]["code"], 100, "{path} {body}");
    }
    let (status, error) = sim.get("/nowhere/at/all/really").await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(2500)));
    let (status, _) = sim.get("/_sim/messages?limit=minus").await;
    assert_eq!(status, 400);
    sim.stop().await;
}
