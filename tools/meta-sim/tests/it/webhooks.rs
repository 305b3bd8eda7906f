use std::collections::HashMap;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn batching_puts_several_statuses_in_one_post() {
    let sim = Sim::start(meta_sim::Behaviour {
        batch_max: 4,
        batch_window_ms: 2000,
        ..quiet_behaviour()
    })
    .await;
    sim.seed_template("batched", "UTILITY", "Hello").await;
    for to in ["919800000001", "919800000002"] {
        assert_eq!(sim.send(template_send(to, "batched", &[])).await.0, 200);
    }
    let all = sim
        .receiver
        .wait_for("one batch of 4", |all| !all.is_empty())
        .await;
    assert_eq!(all.len(), 1);
    assert_signed(&all[0]);
    let statuses = all[0].statuses();
    assert_eq!(statuses.len(), 4);
    let mut names: Vec<&str> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["delivered", "delivered", "sent", "sent"]);
    let (_, webhooks) = sim.get("/_sim/webhooks").await;
    assert_eq!(webhooks["deliveries"][0]["items"], 4);
    sim.stop().await;
}

#[tokio::test]
async fn duplicates_post_the_same_statuses_twice() {
    let sim = Sim::start(meta_sim::Behaviour {
        duplicate_rate: 1.0,
        ..quiet_behaviour()
    })
    .await;
    sim.seed_template("twice", "UTILITY", "Hello").await;
    sim.send(template_send("919800000001", "twice", &[])).await;
    let all = sim
        .receiver
        .wait_for("sent and delivered, twice each", |all| all.len() >= 4)
        .await;
    let mut copies: HashMap<String, usize> = HashMap::new();
    for post in &all {
        assert_signed(post);
        *copies.entry(sha256_hex(&post.body)).or_default() += 1;
    }
    assert_eq!(copies.len(), 2);
    assert!(copies.values().all(|n| *n == 2), "{copies:?}");
    sim.stop().await;
}

#[tokio::test]
async fn an_unacknowledged_post_is_retried_with_the_same_bytes() {
    let sim = Sim::start(quiet_behaviour()).await;
    sim.receiver.fail_first(2);
    let (status, body) = sim
        .control(reqwest::Method::POST, "/_sim/flood", json!({"count": 1}))
        .await;
    assert_eq!(status, 202);
    let delivery_id = body["delivery_ids"][0].clone();
    let all = sim
        .receiver
        .wait_for("two refusals and an acknowledged retry", |all| {
            all.len() >= 3
        })
        .await;
    assert_eq!(all[0].body, all[1].body);
    assert_eq!(all[1].body, all[2].body);
    assert_signed(&all[2]);

    let summary_acked = || async {
        let (_, webhooks) = sim.get("/_sim/webhooks").await;
        webhooks
    };
    let webhooks = summary_acked().await;
    let delivery = &webhooks["deliveries"][0];
    assert_eq!(delivery["id"], delivery_id);
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["acked"], true);
    assert_eq!(delivery["last_http_status"], 200);
    assert_eq!(delivery["body_sha256"], sha256_hex(&all[0].body).as_str());
    assert_eq!(webhooks["summary"]["attempts"], 3);
    sim.stop().await;
}

#[tokio::test]
async fn flood_groups_statuses_per_post() {
    let sim = Sim::start(quiet_behaviour()).await;
    let (status, body) = sim
        .control(
            reqwest::Method::POST,
            "/_sim/flood",
            json!({"count": 25, "statuses_per_post": 10}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["delivery_ids"].as_array().unwrap().len(), 3);
    let all = sim.receiver.wait_for("3 posts", |all| all.len() >= 3).await;
    let mut sizes: Vec<usize> = all.iter().map(|r| r.statuses().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 10, 10]);
    assert!(sim
        .receiver
        .statuses()
        .iter()
        .all(|s| s["status"] == "delivered"));
    sim.stop().await;
}
