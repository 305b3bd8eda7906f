//! `templates.submit` end to end: a template saved through the service reaches Meta's
//! simulator through the outbox, the relay and the worker-pool; over the hourly limit the
//! job waits in the delayed retries instead of failing.

use std::time::Duration;

use kloyst_audit::RequestMeta;
use kloyst_queue::{Queue, QueueConfig};
use kloyst_templates::model::TemplateInput;
use kloyst_templates::Templates;
use kloyst_testkit::{eventually, RunningService, TestStores};
use meta_sim::{Behaviour, SimSettings};
use outbox_relay::OutboxRelay;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::admin_of_new_vendor;
use worker_pool::{WorkerPool, JOBS_STREAM};

/// Meta's simulator with the testkit's META_* identity; its base URL.
async fn start_sim(shutdown: &CancellationToken) -> (String, tokio::task::JoinHandle<()>) {
    let settings = SimSettings {
        access_token: "test-token".to_owned(),
        app_secret: "test-meta-app-secret".to_owned(),
        waba_id: "100000000000001".to_owned(),
        phone_number_id: "100000000000002".to_owned(),
        display_phone_number: "15550001234".to_owned(),
        webhook_url: None,
        behaviour: Behaviour::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = shutdown.clone();
    let task =
        tokio::spawn(async move { meta_sim::serve(settings, listener, shutdown).await.unwrap() });
    (base, task)
}

fn input(name: &str) -> TemplateInput {
    serde_json::from_value(json!({
        "name": name,
        "language": "en_US",
        "category": "UTILITY",
        "components": [{ "type": "BODY", "text": "Hi {{1}}, your order has shipped. Thanks!",
                         "example": { "body_text": [["Asha"]] } }]
    }))
    .unwrap()
}

async fn meta_template_id(stores: &TestStores, id: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT meta_template_id FROM templates WHERE id = $1")
        .bind(id)
        .fetch_one(&stores.pg)
        .await
        .unwrap()
}

#[tokio::test]
async fn saved_templates_reach_meta_and_the_one_over_the_hourly_limit_waits() {
    let stores = TestStores::new().await;
    let stop_sim = CancellationToken::new();
    let (sim, sim_task) = start_sim(&stop_sim).await;
    let env = stores
        .env()
        .with("META_API_BASE", &sim)
        .with("TEMPLATE_SUBMIT_PER_HOUR", "1");
    let worker = RunningService::start::<WorkerPool>(&env).await;
    let relay = RunningService::start::<OutboxRelay>(&env).await;

    let templates = Templates::new(stores.pg.clone());
    let admin = admin_of_new_vendor(&stores).await;
    let first = templates
        .create(&admin, input("order_shipped"), &RequestMeta::default())
        .await
        .unwrap();
    let submitted = eventually(Duration::from_secs(15), || {
        meta_template_id(&stores, first.id)
    })
    .await;
    assert!(submitted.is_some(), "the template never reached Meta");

    let second = templates
        .create(&admin, input("order_delayed"), &RequestMeta::default())
        .await
        .unwrap();
    let queue = Queue::new(
        stores.redis.clone(),
        QueueConfig::with_prefix(stores.redis_prefix.clone()),
        JOBS_STREAM,
    );
    let deferred = eventually(Duration::from_secs(15), || {
        let queue = queue.clone();
        async move { queue.stats().await.ok().filter(|s| s.delayed == 1) }
    })
    .await
    .expect("the second submission waits among the delayed retries");
    assert_eq!(deferred.dead, 0, "nothing failed");
    assert_eq!(meta_template_id(&stores, second.id).await, None);
    let status: String = sqlx::query_scalar("SELECT status FROM templates WHERE id = $1")
        .bind(second.id)
        .fetch_one(&stores.pg)
        .await
        .unwrap();
    assert_eq!(status, "PENDING");

    relay.stop().await.unwrap();
    worker.stop().await.unwrap();
    stop_sim.cancel();
    sim_task.await.unwrap();
    stores.cleanup_redis().await;
}
