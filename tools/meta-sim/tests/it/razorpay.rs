use serde_json::{json, Value};

use crate::helpers::sha256_hex;
use crate::razorpay_support::*;

fn is_razorpay_id(id: &Value, prefix: &str) -> bool {
    id.as_str()
        .and_then(|id| id.strip_prefix(prefix))
        .and_then(|id| id.strip_prefix('_'))
        .is_some_and(|tail| tail.len() == 14 && tail.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[tokio::test]
async fn an_order_is_created_and_read_back_in_razorpays_shape() {
    let sim = RazorpaySim::start().await;
    let (status, order) = sim
        .create_order(
            json!({"amount": 29900, "currency": "INR", "receipt": "wallet#1",
                             "notes": {"tenant_id": "t-42"}}),
        )
        .await;
    assert_eq!(status, 200, "{order}");
    assert!(is_razorpay_id(&order["id"], "order"), "{order}");
    assert_eq!(order["entity"], "order");
    assert_eq!(order["amount"], 29900);
    assert_eq!(order["amount_paid"], 0);
    assert_eq!(order["amount_due"], 29900);
    assert_eq!(order["currency"], "INR");
    assert_eq!(order["receipt"], "wallet#1");
    assert_eq!(order["offer_id"], Value::Null);
    assert_eq!(order["status"], "created");
    assert_eq!(order["attempts"], 0);
    assert_eq!(order["notes"], json!({"tenant_id": "t-42"}));
    assert!(order["created_at"].as_i64().unwrap() > 1_700_000_000);

    let id = order["id"].as_str().unwrap();
    let (status, read) = sim.get_authed(&format!("/v1/orders/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read, order);

    let (_, bare) = sim
        .create_order(json!({"amount": 100, "currency": "INR"}))
        .await;
    assert_eq!(
        bare["notes"],
        json!([]),
        "empty notes are [] as at Razorpay"
    );
    assert_eq!(bare["receipt"], Value::Null);

    let (status, unknown) = sim.get_authed("/v1/orders/order_Nope0000000000").await;
    assert_eq!(status, 400);
    assert_eq!(unknown["error"]["code"], "BAD_REQUEST_ERROR");
    assert_eq!(
        unknown["error"]["description"],
        "The id provided does not exist"
    );
    sim.stop().await;
}

#[tokio::test]
async fn invalid_orders_are_refused_naming_the_field() {
    let sim = RazorpaySim::start().await;
    let (status, body) = sim
        .create_order(json!({"amount": 99, "currency": "INR"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {"code": "BAD_REQUEST_ERROR",
                         "description": "The amount must be at least INR 1.00",
                         "source": "business", "step": "payment_initiation",
                         "reason": "input_validation_failed", "metadata": {},
                         "field": "amount"}})
    );
    let many_notes: serde_json::Map<String, Value> =
        (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (json!({"amount": 150.5, "currency": "INR"}), "amount"),
        (json!({"amount": 100, "currency": "rupees"}), "currency"),
        (
            json!({"amount": 100, "currency": "INR", "receipt": "r".repeat(41)}),
            "receipt",
        ),
        (
            json!({"amount": 100, "currency": "INR", "notes": many_notes}),
            "notes",
        ),
        (
            json!({"amount": 100, "currency": "INR", "notes": {"k": "v".repeat(257)}}),
            "notes",
        ),
    ];
    for (request, field) in cases {
        let (status, body) = sim.create_order(request.clone()).await;
        assert_eq!(status, 400, "{request}");
        assert_eq!(body["error"]["field"], field, "{request} → {body}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_basic_auth_is_401() {
    let sim = RazorpaySim::start().await;
    let expected = json!({"error": {"code": "BAD_REQUEST_ERROR",
                                    "description": "Authentication failed",
                                    "source": "NA", "step": "NA", "reason": "NA",
                                    "metadata": {}, "field": null}});
    let order = json!({"amount": 100, "currency": "INR"});
    for auth in [
        None,
        Some((KEY_ID, "wrong-secret")),
        Some(("rzp_test_other", KEY_SECRET)),
    ] {
        let (status, body) = sim.create_order_as(auth, order.clone()).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(body, expected);
    }
    let (status, _) = sim
        .http
        .get(format!("{}/v1/orders/order_x", sim.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401);
    sim.stop().await;
}

#[tokio::test]
async fn paying_posts_a_signed_payment_captured_and_pays_the_order() {
    let sim = RazorpaySim::start().await;
    let order_id = sim.order_id().await;
    let (status, paid) = sim
        .control("/_sim/razorpay/pay", json!({"order_id": order_id}))
        .await;
    assert_eq!(status, 200, "{paid}");
    let payment_id = paid["payment_id"].as_str().unwrap().to_owned();
    assert!(is_razorpay_id(&paid["payment_id"], "pay"));
    assert_eq!(paid["order_id"], order_id.as_str());
    let checkout = &paid["checkout"];
    assert_eq!(checkout["razorpay_order_id"], order_id.as_str());
    assert_eq!(checkout["razorpay_payment_id"], payment_id.as_str());
    assert_eq!(
        checkout["razorpay_signature"],
        hmac_hex(KEY_SECRET, format!("{order_id}|{payment_id}").as_bytes()).as_str()
    );

    let posted = sim.receiver.wait_for_posts(1).await;
    let post = &posted[0];
    post.assert_signed();
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    assert_eq!(post.event_id.as_deref(), paid["event_ids"][0].as_str());
    assert!(post.event_id.as_deref().unwrap().starts_with("evt_"));
    assert_eq!(post.json["entity"], "event");
    assert_eq!(post.event(), "payment.captured");
    assert_eq!(post.json["contains"], json!(["payment"]));
    assert!(post.json["account_id"]
        .as_str()
        .unwrap()
        .starts_with("acc_"));
    let payment = post.payment();
    assert_eq!(payment["id"], payment_id.as_str());
    assert_eq!(payment["entity"], "payment");
    assert_eq!(payment["order_id"], order_id.as_str());
    assert_eq!(payment["amount"], 29900);
    assert_eq!(payment["currency"], "INR");
    assert_eq!(payment["status"], "captured");
    assert_eq!(payment["captured"], true);
    assert_eq!(payment["method"], "upi");
    assert_eq!(payment["notes"], json!({"tenant_id": "t-42"}));
    assert_eq!(payment["amount_refunded"], 0);
    assert_eq!(payment["refund_status"], Value::Null);
    assert_eq!(payment["error_code"], Value::Null);

    let (_, order) = sim.get_authed(&format!("/v1/orders/{order_id}")).await;
    assert_eq!(order["status"], "paid");
    assert_eq!(order["amount_paid"], 29900);
    assert_eq!(order["amount_due"], 0);
    assert_eq!(order["attempts"], 1);
    let (_, fetched) = sim.get_authed(&format!("/v1/payments/{payment_id}")).await;
    assert_eq!(&fetched, payment);

    let deliveries = sim.deliveries_at_least(1).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["event"], "payment.captured");
    assert_eq!(deliveries[0]["status"], 200);
    assert_eq!(deliveries[0]["attempt"], 1);
    assert_eq!(
        deliveries[0]["body_sha256"],
        sha256_hex(&post.body).as_str()
    );

    let (status, again) = sim
        .control("/_sim/razorpay/pay", json!({"order_id": order_id}))
        .await;
    assert_eq!(status, 409, "a paid order cannot be paid again: {again}");
    sim.stop().await;
}

#[tokio::test]
async fn deliveries_repeat_the_same_bytes_under_one_event_id() {
    let sim = RazorpaySim::start().await;
    let order_id = sim.order_id().await;
    let (_, paid) = sim
        .control(
            "/_sim/razorpay/pay",
            json!({"order_id": order_id, "deliveries": 3, "amount": 100}),
        )
        .await;
    assert_eq!(paid["event_ids"].as_array().unwrap().len(), 1);
    let posted = sim.receiver.wait_for_posts(3).await;
    assert_eq!(posted.len(), 3);
    for post in &posted {
        post.assert_signed();
        assert_eq!(post.body, posted[0].body);
        assert_eq!(post.event_id.as_deref(), paid["event_ids"][0].as_str());
    }
    assert_eq!(posted[0].payment()["amount"], 100, "the mismatch is posted");
    sim.stop().await;
}

#[tokio::test]
async fn failed_first_posts_failed_then_captured_for_one_payment() {
    let sim = RazorpaySim::start().await;
    let order_id = sim.order_id().await;
    let (_, paid) = sim
        .control(
            "/_sim/razorpay/pay",
            json!({"order_id": order_id, "failed_first": true}),
        )
        .await;
    let event_ids = paid["event_ids"].as_array().unwrap();
    assert_eq!(event_ids.len(), 2);
    let posted = sim.receiver.wait_for_posts(2).await;
    assert_eq!(posted[0].event(), "payment.failed");
    assert_eq!(posted[1].event(), "payment.captured");
    assert_ne!(posted[0].event_id, posted[1].event_id);
    for post in &posted {
        post.assert_signed();
        assert_eq!(post.payment()["id"], paid["payment_id"]);
    }
    let failed = posted[0].payment();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["captured"], false);
    assert_eq!(failed["error_code"], "BAD_REQUEST_ERROR");
    assert_eq!(failed["error_description"], "Payment failed");
    assert_eq!(posted[1].payment()["status"], "captured");
    sim.stop().await;
}

#[tokio::test]
async fn a_failed_outcome_leaves_the_order_attempted_without_a_checkout_signature() {
    let sim = RazorpaySim::start().await;
    let order_id = sim.order_id().await;
    let (status, paid) = sim
        .control(
            "/_sim/razorpay/pay",
            json!({"order_id": order_id, "outcome": "failed", "notes": {"why": "test"}}),
        )
        .await;
    assert_eq!(status, 200, "{paid}");
    assert_eq!(paid["checkout"], Value::Null);
    let posted = sim.receiver.wait_for_posts(1).await;
    assert_eq!(posted[0].event(), "payment.failed");
    assert_eq!(posted[0].payment()["notes"], json!({"why": "test"}));
    let (_, order) = sim.get_authed(&format!("/v1/orders/{order_id}")).await;
    assert_eq!(order["status"], "attempted");
    assert_eq!(order["amount_paid"], 0);
    let (status, _) = sim
        .control(
            "/_sim/razorpay/pay",
            json!({"order_id": "order_Unknown0000000"}),
        )
        .await;
    assert_eq!(status, 404);
    sim.stop().await;
}

#[tokio::test]
async fn an_unacknowledged_event_is_retried_with_identical_bytes() {
    let sim = RazorpaySim::start().await;
    sim.receiver.fail_first(1);
    let order_id = sim.order_id().await;
    sim.control("/_sim/razorpay/pay", json!({"order_id": order_id}))
        .await;
    let posted = sim.receiver.wait_for_posts(2).await;
    assert_eq!(posted[0].body, posted[1].body);
    assert_eq!(posted[0].signature, posted[1].signature);
    assert_eq!(posted[0].event_id, posted[1].event_id);
    posted[1].assert_signed();
    let deliveries = sim.deliveries_at_least(2).await;
    let summary: Vec<(Value, Value)> = deliveries
        .iter()
        .map(|d| (d["attempt"].clone(), d["status"].clone()))
        .collect();
    assert_eq!(summary, [(json!(1), json!(500)), (json!(2), json!(200))]);
    assert_eq!(deliveries[0]["body_sha256"], deliveries[1]["body_sha256"]);
    sim.stop().await;
}

#[tokio::test]
async fn refunds_post_refund_processed_partial_then_full() {
    let sim = RazorpaySim::start().await;
    let order_id = sim.order_id().await;
    let (_, paid) = sim
        .control("/_sim/razorpay/pay", json!({"order_id": order_id}))
        .await;
    let payment_id = paid["payment_id"].as_str().unwrap();
    sim.receiver.wait_for_posts(1).await;
    let (status, partial) = sim
        .control(
            "/_sim/razorpay/refund",
            json!({"payment_id": payment_id, "amount": 9900}),
        )
        .await;
    assert_eq!(status, 200, "{partial}");
    assert!(is_razorpay_id(&partial["refund_id"], "rfnd"));
    let posted = sim.receiver.wait_for_posts(2).await;
    let event = &posted[1];
    event.assert_signed();
    assert_eq!(event.event(), "refund.processed");
    assert_eq!(event.event_id.as_deref(), partial["event_ids"][0].as_str());
    assert_eq!(event.json["contains"], json!(["refund", "payment"]));
    let refund = &event.json["payload"]["refund"]["entity"];
    assert_eq!(refund["id"], partial["refund_id"]);
    assert_eq!(refund["entity"], "refund");
    assert_eq!(refund["amount"], 9900);
    assert_eq!(refund["currency"], "INR");
    assert_eq!(refund["payment_id"], payment_id);
    assert_eq!(refund["status"], "processed");
    assert_eq!(event.payment()["amount_refunded"], 9900);
    assert_eq!(event.payment()["refund_status"], "partial");

    let (_, full) = sim
        .control("/_sim/razorpay/refund", json!({"payment_id": payment_id}))
        .await;
    let posted = sim.receiver.wait_for_posts(3).await;
    assert_eq!(posted[2].event_id.as_deref(), full["event_ids"][0].as_str());
    assert_eq!(
        posted[2].json["payload"]["refund"]["entity"]["amount"],
        20000
    );
    assert_eq!(posted[2].payment()["refund_status"], "full");
    assert_eq!(posted[2].payment()["amount_refunded"], 29900);
    let (status, _) = sim
        .control("/_sim/razorpay/refund", json!({"payment_id": payment_id}))
        .await;
    assert_eq!(status, 409, "nothing left to refund");
    let (_, order) = sim.get_authed(&format!("/v1/orders/{order_id}")).await;
    assert_eq!(
        order["status"], "paid",
        "an order stays paid after a refund"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_hand_made_event_is_posted_once_with_the_given_signature() {
    let sim = RazorpaySim::start().await;
    let body = json!({"entity": "event", "event": "payment.captured", "payload": {}});
    let (status, answer) = sim
        .control(
            "/_sim/razorpay/event",
            json!({"body": body, "signature": "bad-signature", "event_id": "evt_Handmade000001"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], 200, "what the receiver answered");
    assert_eq!(answer["event_id"], "evt_Handmade000001");
    let posted = sim.receiver.all();
    assert_eq!(posted.len(), 1, "posted synchronously, once");
    assert_eq!(posted[0].signature.as_deref(), Some("bad-signature"));
    assert_eq!(posted[0].event_id.as_deref(), Some("evt_Handmade000001"));
    assert_eq!(posted[0].json, body);

    sim.receiver.fail_first(1);
    let (_, signed) = sim
        .control("/_sim/razorpay/event", json!({"body": body}))
        .await;
    assert_eq!(
        signed["status"], 500,
        "no retry: the receiver's answer is reported"
    );
    let posted = sim.receiver.all();
    assert_eq!(posted.len(), 2);
    posted[1].assert_signed();
    assert_eq!(posted[1].event_id.as_deref(), signed["event_id"].as_str());
    sim.stop().await;
}

#[tokio::test]
async fn order_paid_follows_the_capture_and_stats_count_the_sandbox() {
    let sim = RazorpaySim::start().await;
    let order_id = sim.order_id().await;
    let (_, failed) = sim
        .control(
            "/_sim/razorpay/pay",
            json!({"order_id": order_id, "outcome": "failed"}),
        )
        .await;
    // Two calls are two background deliveries: wait so their order is fixed.
    sim.receiver.wait_for_posts(1).await;
    let (_, paid) = sim
        .control(
            "/_sim/razorpay/pay",
            json!({"order_id": order_id, "order_paid": true}),
        )
        .await;
    let posted = sim.receiver.wait_for_posts(3).await;
    let events: Vec<&str> = posted.iter().map(Posted::event).collect();
    assert_eq!(events, ["payment.failed", "payment.captured", "order.paid"]);
    let order_paid = &posted[2].json;
    assert_eq!(order_paid["contains"], json!(["payment", "order"]));
    assert_eq!(order_paid["payload"]["order"]["entity"]["status"], "paid");
    assert_eq!(order_paid["payload"]["order"]["entity"]["attempts"], 2);
    assert_eq!(
        order_paid["payload"]["order"]["entity"]["notes"]["tenant_id"],
        "t-42"
    );
    assert_eq!(
        order_paid["payload"]["payment"]["entity"]["id"],
        paid["payment_id"]
    );

    let (status, payments) = sim
        .get_authed(&format!("/v1/orders/{order_id}/payments"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(payments["entity"], "collection");
    assert_eq!(payments["count"], 2);
    let mut ids: Vec<&Value> = payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    ids.sort_by_key(|id| id.as_str());
    let mut expected = vec![&failed["payment_id"], &paid["payment_id"]];
    expected.sort_by_key(|id| id.as_str());
    assert_eq!(ids, expected);

    sim.deliveries_at_least(3).await;
    let (_, stats) = read_stats(&sim).await;
    assert_eq!(stats["razorpay"]["orders"], 1);
    assert_eq!(stats["razorpay"]["orders_paid"], 1);
    assert_eq!(stats["razorpay"]["payments"], 2);
    assert_eq!(stats["razorpay"]["webhook_posts_acked"], 3);
    sim.stop().await;
}

async fn read_stats(sim: &RazorpaySim) -> (u16, Value) {
    let response = sim
        .http
        .get(format!("{}/_sim/stats", sim.base))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}
