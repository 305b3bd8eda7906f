//! `/webhook/meta`: handshake, signatures, durable intake, processing, dead letters, replay.

use kloyst_testkit::TestStores;
use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn the_handshake_answers_the_challenge_only_for_our_token() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let get = |query: &str| reqwest::get(worker.url(&format!("/webhook/meta?{query}")));

    let ok = get("hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=1158201444")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(ok.text().await.unwrap(), "1158201444");

    for refused in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=subscribe&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
    ] {
        let response = get(refused).await.unwrap();
        assert_eq!(response.status(), 403, "{refused}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let no_challenge = get("hub.mode=subscribe&hub.verify_token=test-verify-token")
        .await
        .unwrap();
    assert_eq!(no_challenge.status(), 400);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn only_validly_signed_bodies_are_stored() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let client = reqwest::Client::new();
    let body = statuses_body(&[status("wamid.sig1", "sent", 1_750_000_000)]);
    let good = kloyst_meta::signature::sign(APP_SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    let last = tampered.len() - 3;
    tampered[last] = b' ';
    let wrong_secret = kloyst_meta::signature::sign(b"another-app-secret", &body);
    let sha1 = format!("sha1={}", &good[7..47]);

    let refusals: [(Vec<u8>, Option<String>); 4] = [
        (tampered, Some(good.clone())),
        (body.clone(), Some(wrong_secret)),
        (body.clone(), None),
        (body.clone(), Some(sha1)),
    ];
    for (payload, signature) in refusals {
        let mut request = client.post(worker.url("/webhook/meta")).body(payload);
        if let Some(signature) = &signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{signature:?}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "signature_invalid");
    }
    assert_eq!(
        inbox_count(&stores.pg).await,
        0,
        "nothing refused is stored"
    );

    let accepted = post_signed(&client, &worker, body).await;
    assert_eq!(accepted.status(), 200);
    assert_eq!(inbox_count(&stores.pg).await, 1);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_thousand_status_post_of_two_megabytes_is_stored_and_parsed() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let padding = "x".repeat(1800);
    let statuses: Vec<Value> = (0..1000)
        .map(|i| {
            let mut s = status(&format!("wamid.big{i:04}"), "delivered", 1_750_000_000 + i);
            // Meta's optional fields make real statuses large; this one is ~2 KB.
            s["biz_opaque_callback_data"] = json!(padding);
            s
        })
        .collect();
    let body = statuses_body(&statuses);
    assert!(
        body.len() > 1_900_000 && body.len() < 3_000_000,
        "{}",
        body.len()
    );
    let response = post_signed(&reqwest::Client::new(), &worker, body).await;
    assert_eq!(response.status(), 200);
    let stored = wait_for_count(
        &stores.pg,
        "SELECT count(*) FROM message_status_events WHERE status = 'DELIVERED'",
        1000,
    )
    .await;
    assert_eq!(stored, 1000);
    let (pricing, category, payload_padding): (String, String, String) = sqlx::query_as(
        "SELECT pricing_type, pricing_category, payload->>'biz_opaque_callback_data' \
           FROM message_status_events WHERE wa_message_id = 'wamid.big0007'",
    )
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    assert_eq!(
        (pricing.as_str(), category.as_str()),
        ("regular", "MARKETING")
    );
    assert_eq!(payload_padding.len(), 1800, "the raw status is kept");
    let event_type: Option<String> =
        sqlx::query_scalar("SELECT event_type FROM webhook_inbox WHERE state = 'PROCESSED'")
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!(event_type.as_deref(), Some("messages"));
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let body = vec![b' '; 5 * 1024 * 1024];
    let response = post_signed(&reqwest::Client::new(), &worker, body).await;
    assert_eq!(response.status(), 413);
    assert_eq!(inbox_count(&stores.pg).await, 0);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn duplicates_are_stored_once_and_statuses_applied_once() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let client = reqwest::Client::new();
    let first = statuses_body(&[
        status("wamid.d1", "sent", 1_750_000_000),
        status("wamid.d1", "sent", 1_750_000_000),
        status("wamid.d2", "sent", 1_750_000_001),
    ]);
    // Meta's retry of the same delivery: the same bytes.
    for _ in 0..3 {
        assert_eq!(
            post_signed(&client, &worker, first.clone()).await.status(),
            200
        );
    }
    // Another delivery repeating a status, out of order with a later one.
    let second = statuses_body(&[
        status("wamid.d2", "read", 1_750_000_009),
        status("wamid.d1", "sent", 1_750_000_000),
    ]);
    assert_eq!(post_signed(&client, &worker, second).await.status(), 200);
    assert_eq!(
        inbox_count(&stores.pg).await,
        2,
        "identical bodies stored once"
    );
    let processed = wait_for_count(
        &stores.pg,
        "SELECT count(*) FROM webhook_inbox WHERE state = 'PROCESSED'",
        2,
    )
    .await;
    assert_eq!(processed, 2);
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT wa_message_id, status FROM message_status_events ORDER BY wa_message_id, status",
    )
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(w, s)| (w.as_str(), s.as_str())).collect();
    assert_eq!(
        rows,
        [
            ("wamid.d1", "SENT"),
            ("wamid.d2", "READ"),
            ("wamid.d2", "SENT")
        ]
    );
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn garbage_with_a_valid_signature_is_acknowledged_stored_and_dead_lettered() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let client = reqwest::Client::new();
    let garbage =
        b"{\"object\": \"whatsapp_business_account\", \"entry\": [ this is not json".to_vec();
    assert_eq!(post_signed(&client, &worker, garbage).await.status(), 200);
    let dead = wait_for_count(
        &stores.pg,
        "SELECT count(*) FROM webhook_inbox WHERE state = 'DEAD'",
        1,
    )
    .await;
    assert_eq!(dead, 1);
    let (error, attempts): (String, i32) =
        sqlx::query_as("SELECT last_error, attempts FROM webhook_inbox")
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert!(error.starts_with("not a Meta notification"), "{error}");
    assert_eq!(
        attempts, 3,
        "retried with backoff up to WEBHOOK_MAX_ATTEMPTS"
    );
    // Still up, and still processing.
    let next = statuses_body(&[status("wamid.after", "sent", 1_750_000_000)]);
    assert_eq!(post_signed(&client, &worker, next).await.status(), 200);
    assert_eq!(
        wait_for_count(
            &stores.pg,
            "SELECT count(*) FROM message_status_events WHERE wa_message_id = 'wamid.after'",
            1
        )
        .await,
        1
    );
    worker.stop().await.unwrap();
}

fn template_update(meta_id: u64, event: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "time": 1_751_247_548, "changes": [{
            "field": "message_template_status_update",
            "value": {"event": event, "message_template_id": meta_id,
                      "message_template_name": "order_update", "message_template_language": "en",
                      "reason": "NONE", "message_template_category": "UTILITY"}
        }]}]
    }))
    .unwrap()
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_by_operators_only() {
    let stores = TestStores::new().await;
    let worker = start(&stores).await;
    let client = reqwest::Client::new();
    // A review of a template nobody has: retried, then dead-lettered.
    assert_eq!(
        post_signed(&client, &worker, template_update(777_000_111, "APPROVED"))
            .await
            .status(),
        200
    );
    assert_eq!(
        wait_for_count(
            &stores.pg,
            "SELECT count(*) FROM webhook_inbox WHERE state = 'DEAD'",
            1
        )
        .await,
        1
    );
    let list_url = worker.url("/internal/dead-letters?source=META");
    assert_eq!(client.get(&list_url).send().await.unwrap().status(), 401);
    let wrong = client
        .get(&list_url)
        .bearer_auth("not-the-ops-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let token = "ops-token-for-tests-0123456789";
    let page: Value = client
        .get(&list_url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let letter = &page["data"][0];
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["event_type"], "message_template_status_update");
    assert!(letter["last_error"].as_str().unwrap().contains("777000111"));
    assert!(letter["body_preview"]
        .as_str()
        .unwrap()
        .contains("order_update"));
    let id = letter["id"].as_i64().unwrap();

    // The template appears (its creation answer was slow); a replay now applies the review.
    let vendor = create_vendor_with_template(&stores.pg, "777000111").await;
    let replay = client
        .post(worker.url(&format!("/internal/dead-letters/{id}/replay")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(
        wait_for_count(
            &stores.pg,
            "SELECT count(*) FROM templates WHERE status = 'APPROVED'",
            1
        )
        .await,
        1
    );
    let (state, replays): (String, i32) =
        sqlx::query_as("SELECT state, replay_count FROM webhook_inbox WHERE id = $1")
            .bind(id)
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    assert_eq!((state.as_str(), replays), ("PROCESSED", 1));
    // Replaying something no longer dead is a 404; bulk replay reports nothing to do.
    let again = client
        .post(worker.url(&format!("/internal/dead-letters/{id}/replay")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let bulk: Value = client
        .post(worker.url("/internal/dead-letters/replay"))
        .bearer_auth(token)
        .json(&json!({"all": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bulk["replayed"], 0);
    let bad = client
        .post(worker.url("/internal/dead-letters/replay"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(!vendor.is_nil());
    worker.stop().await.unwrap();
}

/// A vendor with one template that Meta knows as `meta_id`, written as the owner would.
async fn create_vendor_with_template(pg: &sqlx::PgPool, meta_id: &str) -> uuid::Uuid {
    let vendor: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Template Co') RETURNING id")
            .fetch_one(pg)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO templates (vendor_id, name, language, category, components, meta_name, \
                                meta_template_id, submitted_at) \
         VALUES ($1, 'order_update', 'en', 'UTILITY', '[{\"type\":\"BODY\",\"text\":\"Hi\"}]', \
                 'v1_order_update', $2, now())",
    )
    .bind(vendor)
    .bind(meta_id)
    .execute(pg)
    .await
    .unwrap();
    vendor
}

/// A status whose message never appears is parked, then dead-lettered after
/// `STATUS_PARK_TIMEOUT` with the reason; the ops API lists it with Meta's payload, and a
/// replay once the message exists applies it (and only once).
#[tokio::test]
async fn a_dead_status_is_listed_and_replayed_once_its_message_exists() {
    let stores = TestStores::new().await;
    let env = fast_env(&stores)
        .with("STATUS_PARK_TIMEOUT", "1s")
        .with("STATUS_APPLY_POLL", "100ms");
    let worker = kloyst_testkit::RunningService::start::<webhook_worker::WebhookWorker>(&env).await;
    let client = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp();
    let body = statuses_body(&[status("wamid.orphan", "sent", now)]);
    assert_eq!(post_signed(&client, &worker, body).await.status(), 200);
    assert_eq!(
        wait_for_count(
            &stores.pg,
            "SELECT count(*) FROM message_status_events WHERE dead_at IS NOT NULL",
            1
        )
        .await,
        1
    );

    let token = "ops-token-for-tests-0123456789";
    let list_url = worker.url("/internal/dead-statuses");
    assert_eq!(client.get(&list_url).send().await.unwrap().status(), 401);
    let page: Value = client
        .get(&list_url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dead = &page["data"][0];
    assert_eq!(dead["wa_message_id"], "wamid.orphan");
    assert_eq!(dead["status"], "SENT");
    assert_eq!(dead["dead_reason"], "no message with this wamid");
    assert_eq!(dead["payload"]["id"], "wamid.orphan");

    // The message turns up (e.g. the reconciler found the send Meta accepted); replay applies it.
    sqlx::query(
        "INSERT INTO message_logs (vendor_id, direction, recipient, wa_message_id, status) \
         VALUES (gen_random_uuid(), 'OUTBOUND', '919812345678', 'wamid.orphan', 'PENDING')",
    )
    .execute(&stores.pg)
    .await
    .unwrap();
    let replay = |body: Value| {
        client
            .post(worker.url("/internal/dead-statuses/replay"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let bad = replay(json!({"ids": [], "all": false})).await.unwrap();
    assert_eq!(bad.status(), 422);
    let replayed: Value = replay(json!({"all": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["replayed"], 1);
    assert_eq!(
        wait_for_count(
            &stores.pg,
            "SELECT count(*) FROM message_logs WHERE wa_message_id = 'wamid.orphan' AND status = 'SENT'",
            1
        )
        .await,
        1
    );
    let again: Value = replay(json!({"all": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["replayed"], 0,
        "applied statuses are not dead any more"
    );
    worker.stop().await.unwrap();
}
