use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn template_send_is_accepted_and_reported_by_signed_priced_statuses() {
    let sim = Sim::start(quiet_behaviour()).await;
    sim.seed_template("order_update", "UTILITY", "Hi {{1}}, order {{2}} shipped")
        .await;

    let (status, body) = sim
        .send(template_send(
            "+919812345678",
            "order_update",
            &["Asha", "A-1"],
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["contacts"][0]["input"], "+919812345678");
    assert_eq!(body["contacts"][0]["wa_id"], "919812345678");
    assert_eq!(body["messages"][0]["message_status"], "accepted");
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."), "{wamid}");

    let received = sim
        .receiver
        .wait_for("sent and delivered", |all| {
            all.iter().flat_map(Received::statuses).count() >= 2
        })
        .await;
    for post in &received {
        assert_signed(post);
        assert_eq!(post.json["object"], "whatsapp_business_account");
        assert_eq!(post.json["entry"][0]["id"], WABA_ID);
        assert_eq!(post.field(), Some("messages"));
        let metadata = &post.json["entry"][0]["changes"][0]["value"]["metadata"];
        assert_eq!(metadata["phone_number_id"], PHONE_NUMBER_ID);
        assert_eq!(metadata["display_phone_number"], "15550001234");
    }
    let statuses = sim.receiver.statuses();
    // Concurrent POSTs may arrive in either order, as Meta's do.
    let mut names: Vec<&str> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["delivered", "sent"]);
    for s in &statuses {
        assert_eq!(s["id"], wamid.as_str());
        assert_eq!(s["recipient_id"], "919812345678");
        assert!(s["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
        assert_eq!(
            s["pricing"],
            json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"})
        );
        assert_eq!(s["conversation"]["origin"]["type"], "utility");
    }
    let sent = statuses.iter().find(|s| s["status"] == "sent").unwrap();
    assert!(sent["conversation"]["expiration_timestamp"].is_string());

    let (_, messages) = sim.get("/_sim/messages?limit=10").await;
    assert_eq!(messages[0]["wamid"], wamid.as_str());
    assert_eq!(messages[0]["type"], "template");
    assert_eq!(messages[0]["template_name"], "order_update");
    assert_eq!(messages[0]["language"], "en_US");

    let (_, webhooks) = sim.get("/_sim/webhooks").await;
    assert_eq!(webhooks["summary"]["posted"], 2);
    assert_eq!(webhooks["summary"]["acked"], 2);
    assert_eq!(webhooks["summary"]["pending"], 0);
    let hashes: Vec<String> = received.iter().map(|r| sha256_hex(&r.body)).collect();
    for delivery in webhooks["deliveries"].as_array().unwrap() {
        assert_eq!(delivery["kind"], "statuses");
        assert_eq!(delivery["acked"], true);
        assert_eq!(delivery["last_http_status"], 200);
        assert!(hashes.contains(&delivery["body_sha256"].as_str().unwrap().to_owned()));
    }
    sim.stop().await;
}

#[tokio::test]
async fn text_send_is_free_customer_service() {
    let sim = Sim::start(quiet_behaviour()).await;
    let (status, body) = sim
        .send(
            json!({"messaging_product": "whatsapp", "to": "919812345678", "type": "text",
                     "text": {"body": "hello", "preview_url": false}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["messages"][0].get("message_status").is_none());
    sim.receiver.wait_for("sent", |all| !all.is_empty()).await;
    let sent = &sim.receiver.statuses()[0];
    assert_eq!(
        sent["pricing"],
        json!({"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"})
    );
    sim.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_token_is_190() {
    let sim = Sim::start(quiet_behaviour()).await;
    let path = format!("/v21.0/{PHONE_NUMBER_ID}/messages");
    let body = template_send("919812345678", "x", &[]);
    for token in [Some("not-the-token"), None] {
        let (status, error) = sim.graph_post(&path, token, body.clone()).await;
        assert_eq!(status, 401);
        assert_eq!(error["error"]["code"], 190);
        assert_eq!(error["error"]["type"], "OAuthException");
        assert!(error["error"]["fbtrace_id"].is_string());
    }
    let (_, stats) = sim.get("/_sim/stats").await;
    assert_eq!(stats["sends_rejected_by_code"]["190"], 2);
    sim.stop().await;
}

#[tokio::test]
async fn malformed_requests_are_code_100_naming_the_field() {
    let sim = Sim::start(quiet_behaviour()).await;
    let (status, error) = sim
        .graph_post(
            "/v21.0/999/messages",
            Some(TOKEN),
            template_send("919812345678", "x", &[]),
        )
        .await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)));
    assert_eq!(error["error"]["error_subcode"], 33);

    let (status, error) = sim
        .send(json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}))
        .await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)));
    assert!(error["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("to"));

    let (status, error) = sim.send(template_send("12ab", "x", &[])).await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(100)));
    assert!(error["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .starts_with("to:"));
    assert_eq!(
        error["error"]["error_data"]["messaging_product"],
        "whatsapp"
    );

    let raw = sim
        .http
        .post(format!("{}/v21.0/{PHONE_NUMBER_ID}/messages", sim.base))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let error: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(error["error"]["code"], 100);

    let (status, error) = sim
        .graph_post(
            &format!("/latest/{PHONE_NUMBER_ID}/messages"),
            Some(TOKEN),
            json!({}),
        )
        .await;
    assert_eq!((status, error["error"]["code"].as_i64()), (400, Some(2500)));
    sim.stop().await;
}

#[tokio::test]
async fn unknown_template_is_132001_and_wrong_parameter_count_is_132000() {
    let sim = Sim::start(quiet_behaviour()).await;
    let (status, error) = sim
        .send(template_send("919812345678", "never_created", &[]))
        .await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["code"], 132001);

    sim.seed_template("two_params", "MARKETING", "Hi {{1}}, {{2}} off")
        .await;
    let (status, error) = sim
        .send(template_send("919812345678", "two_params", &["only one"]))
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], 132000);
    assert_eq!(
        error["error"]["error_data"]["details"],
        "body: number of localizable_params (1) does not match the expected number of params (2)"
    );

    let accepting = Sim::start(meta_sim::Behaviour {
        accept_unknown_templates: true,
        ..quiet_behaviour()
    })
    .await;
    let (status, _) = accepting
        .send(template_send("919812345678", "never_created", &[]))
        .await;
    assert_eq!(status, 200);
    accepting.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn bursting_over_the_rate_gets_130429() {
    let sim = Sim::start(meta_sim::Behaviour {
        rate_per_second: 5,
        ..quiet_behaviour()
    })
    .await;
    sim.seed_template("burst", "MARKETING", "Sale").await;
    // Back to back: far faster than 5 per second.
    let mut results = Vec::new();
    for i in 0..20 {
        results.push(
            sim.send(template_send(&format!("91980000{i:04}"), "burst", &[]))
                .await,
        );
    }
    let accepted = results.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<_> = results
        .iter()
        .filter(|(_, b)| b["error"]["code"] == 130429)
        .collect();
    assert!((5..=8).contains(&accepted), "accepted {accepted}");
    assert_eq!(accepted + limited.len(), 20);
    assert_eq!(limited[0].0, 400);
    assert_eq!(limited[0].1["error"]["message"], "(#130429) Rate limit hit");
    sim.stop().await;
}

#[tokio::test]
async fn pair_limit_refuses_a_second_message_to_the_same_user() {
    let sim = Sim::start(meta_sim::Behaviour {
        pair_limit_seconds: 6.0,
        ..quiet_behaviour()
    })
    .await;
    sim.seed_template("pair", "UTILITY", "Hello").await;
    let (first, _) = sim.send(template_send("919800000001", "pair", &[])).await;
    let (second, error) = sim.send(template_send("919800000001", "pair", &[])).await;
    let (other, _) = sim.send(template_send("919800000002", "pair", &[])).await;
    assert_eq!((first, second, other), (200, 400, 200));
    assert_eq!(error["error"]["code"], 131056);
    sim.stop().await;
}

#[tokio::test]
async fn transient_injection_answers_retryable_5xx() {
    let sim = Sim::start(meta_sim::Behaviour {
        transient_error_rate: 1.0,
        ..quiet_behaviour()
    })
    .await;
    sim.seed_template("flaky", "UTILITY", "Hello").await;
    for _ in 0..6 {
        let (status, error) = sim.send(template_send("919800000001", "flaky", &[])).await;
        let code = error["error"]["code"].as_i64().unwrap();
        assert!(
            (status, code) == (500, 1) || (status, code) == (503, 2),
            "{status} {error}"
        );
        assert_eq!(error["error"]["is_transient"], true);
    }
    let (_, stats) = sim.get("/_sim/stats").await;
    assert_eq!(stats["sends_accepted"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn undeliverable_prefix_is_accepted_then_fails_131026() {
    let sim = Sim::start(meta_sim::Behaviour {
        undeliverable_prefixes: vec!["4477".to_owned()],
        ..quiet_behaviour()
    })
    .await;
    sim.seed_template("notice", "UTILITY", "Hello").await;
    let (status, body) = sim
        .send(template_send("+447700900123", "notice", &[]))
        .await;
    assert_eq!(status, 200);
    sim.receiver.wait_for("failed", |all| !all.is_empty()).await;
    let failed = &sim.receiver.statuses()[0];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["id"], body["messages"][0]["id"]);
    assert_eq!(failed["errors"][0]["code"], 131026);
    assert!(failed["errors"][0]["error_data"]["details"].is_string());
    assert!(failed.get("pricing").is_none());
    sim.stop().await;
}
