//! End to end through Meta's simulator: its signed webhooks reach the in-process
//! webhook-worker, which stores and processes them against the real Postgres and Redis.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use kloyst_config::sections::MetaApiSettings;
use kloyst_core::{UserId, VendorId};
use kloyst_identity::{Principal, RequestMeta, Role};
use kloyst_meta::{
    MessageContent, MetaClient, MetaClientSettings, OutgoingMessage, TemplateMessage,
};
use kloyst_templates::model::TemplateInput;
use kloyst_templates::Templates;
use kloyst_testkit::{eventually, RunningService, TestStores};
use meta_sim::Behaviour;
use outbox_relay::OutboxRelay;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use webhook_worker::WebhookWorker;
use worker_pool::WorkerPool;

use crate::support::{fast_env, Sim};

/// Generous for a loaded 2-core machine; every wait polls and returns as soon as it can.
const DEADLINE: Duration = Duration::from_secs(15);

/// The worker's retries are short but many: a template review webhook may arrive before the
/// submitter has committed Meta's id, and is retried until the template is known.
fn worker_env(stores: &TestStores) -> kloyst_config::Env {
    fast_env(stores)
        .with("WEBHOOK_MAX_ATTEMPTS", "40")
        .with("WEBHOOK_RETRY_BASE", "50ms")
        .with("WEBHOOK_RETRY_MAX", "250ms")
}

async fn admin_of_new_vendor(pg: &PgPool) -> Principal {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Acme') RETURNING id")
            .fetch_one(pg)
            .await
            .unwrap();
    let user: Uuid = sqlx::query_scalar(
        "INSERT INTO users (vendor_id, email, password_hash, name, role, status, email_verified_at) \
         VALUES ($1, 'owner@acme.test', 'not-a-real-hash', 'Owner', 'ADMIN', 'ACTIVE', now()) \
         RETURNING id",
    )
    .bind(vendor)
    .fetch_one(pg)
    .await
    .unwrap();
    Principal {
        user_id: UserId::from_uuid(user),
        vendor_id: VendorId::from_uuid(vendor),
        role: Role::Admin,
    }
}

fn template_input(name: &str) -> TemplateInput {
    serde_json::from_value(json!({
        "name": name,
        "language": "en_US",
        "category": "UTILITY",
        "components": [{ "type": "BODY", "text": "Hi {{1}}, your order has shipped. Thanks!",
                         "example": { "body_text": [["Asha"]] } }]
    }))
    .unwrap()
}

#[derive(Debug, sqlx::FromRow)]
struct StoredTemplate {
    status: String,
    meta_template_id: Option<String>,
    rejection_reason: Option<String>,
}

async fn stored_template(pg: &PgPool, id: Uuid) -> StoredTemplate {
    sqlx::query_as("SELECT status, meta_template_id, rejection_reason FROM templates WHERE id = $1")
        .bind(id)
        .fetch_one(pg)
        .await
        .unwrap()
}

async fn scalar(pg: &PgPool, query: &str) -> i64 {
    sqlx::query_scalar(query).fetch_one(pg).await.unwrap()
}

#[tokio::test]
async fn a_template_goes_through_meta_review_to_approved_and_another_to_rejected() {
    let stores = TestStores::new().await;
    let worker = RunningService::start::<WebhookWorker>(&worker_env(&stores)).await;
    let sim = Sim::start(worker.url("/webhook/meta"), Behaviour::default()).await;
    let env = stores.env().with("META_API_BASE", &sim.base);
    let pool = RunningService::start::<WorkerPool>(&env).await;
    let relay = RunningService::start::<OutboxRelay>(&env).await;

    let templates = Templates::new(stores.pg.clone());
    let admin = admin_of_new_vendor(&stores.pg).await;
    let approved = templates
        .create(
            &admin,
            template_input("order_shipped"),
            &RequestMeta::default(),
        )
        .await
        .unwrap();
    let rejected = templates
        .create(
            &admin,
            template_input("order_reject_me"),
            &RequestMeta::default(),
        )
        .await
        .unwrap();

    let reviewed = eventually(DEADLINE, || async {
        let a = stored_template(&stores.pg, approved.id).await;
        let r = stored_template(&stores.pg, rejected.id).await;
        (a.status != "PENDING" && r.status != "PENDING").then_some((a, r))
    })
    .await;
    let (a, r) = reviewed.expect("both templates were reviewed by Meta's simulator");
    assert_eq!(a.status, "APPROVED");
    assert_eq!(a.rejection_reason, None);
    assert_eq!(r.status, "REJECTED");
    assert_eq!(r.rejection_reason.as_deref(), Some("INVALID_FORMAT"));
    let meta_ids: Vec<String> = [&a, &r]
        .iter()
        .map(|t| t.meta_template_id.clone().expect("Meta's id is stored"))
        .collect();
    assert_ne!(meta_ids[0], meta_ids[1]);
    for (id, status) in meta_ids.iter().zip(["APPROVED", "REJECTED"]) {
        let at_sim = sim.get(&format!("/v21.0/{id}")).await;
        assert_eq!(at_sim["status"], status, "the simulator's template {id}");
    }

    let delivered = sim.webhooks().await;
    assert_eq!(delivered["summary"]["pending"], 0);
    let template_deliveries = delivered["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "template_status")
        .count();
    assert_eq!(template_deliveries, 2);
    let processed = scalar(
        &stores.pg,
        "SELECT count(*) FROM webhook_inbox \
         WHERE state = 'PROCESSED' AND event_type = 'message_template_status_update'",
    )
    .await;
    assert_eq!(processed, 2);
    assert_eq!(
        scalar(&stores.pg, "SELECT count(*) FROM webhook_inbox").await,
        2
    );

    relay.stop().await.unwrap();
    pool.stop().await.unwrap();
    sim.stop().await;
    worker.stop().await.unwrap();
    stores.cleanup_redis().await;
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Consent {
    opted_out: bool,
    opt_out_source: Option<String>,
    opt_out_wa_message_id: Option<String>,
}

async fn consent(pg: &PgPool, contact: Uuid) -> Consent {
    sqlx::query_as(
        "SELECT opted_out, opt_out_source, opt_out_wa_message_id FROM contacts WHERE id = $1",
    )
    .bind(contact)
    .fetch_one(pg)
    .await
    .unwrap()
}

/// The INBOUND log row of `wamid`: (vendor, contact).
async fn inbound_log(pg: &PgPool, wamid: &str) -> Option<(Uuid, Option<Uuid>)> {
    sqlx::query_as(
        "SELECT vendor_id, contact_id FROM message_logs \
         WHERE wa_message_id = $1 AND direction = 'INBOUND' AND status = 'RECEIVED'",
    )
    .bind(wamid)
    .fetch_optional(pg)
    .await
    .unwrap()
}

#[tokio::test]
async fn stop_through_the_simulator_opts_the_contact_out_and_start_opts_back_in() {
    let stores = TestStores::new().await;
    let vendor = admin_of_new_vendor(&stores.pg).await.vendor_id.as_uuid();
    let mobile = "919812345678";
    let contact: Uuid = sqlx::query_scalar(
        "INSERT INTO contacts (vendor_id, mobile, country, attributes) \
         VALUES ($1, $2, 'IN', '{\"name\": \"Asha\"}') RETURNING id",
    )
    .bind(vendor)
    .bind(mobile)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    let env = worker_env(&stores).with("INBOUND_DEFAULT_VENDOR_ID", vendor.to_string());
    let worker = RunningService::start::<WebhookWorker>(&env).await;
    let sim = Sim::start(worker.url("/webhook/meta"), Behaviour::default()).await;

    let stop = sim.inbound(mobile, "STOP").await;
    let logged = eventually(DEADLINE, || inbound_log(&stores.pg, &stop)).await;
    assert_eq!(logged, Some((vendor, Some(contact))));
    assert_eq!(
        consent(&stores.pg, contact).await,
        Consent {
            opted_out: true,
            opt_out_source: Some("INBOUND_KEYWORD".to_owned()),
            opt_out_wa_message_id: Some(stop.clone()),
        }
    );

    // Meta's timestamps have second resolution and a tie goes to the keyword processed
    // first: START must be sent in a later second than STOP to count.
    let stop_second = chrono::Utc::now().timestamp();
    while chrono::Utc::now().timestamp() <= stop_second {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = sim.inbound(mobile, "START").await;
    let logged = eventually(DEADLINE, || inbound_log(&stores.pg, &start)).await;
    assert_eq!(logged, Some((vendor, Some(contact))));
    assert_eq!(
        consent(&stores.pg, contact).await,
        Consent {
            opted_out: false,
            opt_out_source: None,
            opt_out_wa_message_id: None,
        }
    );
    assert_eq!(
        scalar(
            &stores.pg,
            "SELECT count(*) FROM contacts WHERE mobile = '919812345678'"
        )
        .await,
        1,
        "the existing contact is used, not a new one"
    );
    assert_eq!(
        scalar(
            &stores.pg,
            "SELECT count(*) FROM webhook_inbox WHERE state = 'PROCESSED'"
        )
        .await,
        2
    );

    sim.stop().await;
    worker.stop().await.unwrap();
    stores.cleanup_redis().await;
}

const SENDS: usize = 200;

/// Every status webhook posted twice, shuffled in batches of up to 25, every message read.
fn noisy_behaviour() -> Behaviour {
    Behaviour {
        rate_per_second: 0,
        duplicate_rate: 1.0,
        reorder: true,
        batch_max: 25,
        read_rate: 1.0,
        accept_unknown_templates: true,
        ..Behaviour::default()
    }
}

/// Sends `SENDS` template messages to the simulator as the gateway would; their wamids.
async fn send_templates(env: &kloyst_config::Env) -> Vec<String> {
    let api = MetaApiSettings::from_env(env).unwrap();
    let client = MetaClient::new(MetaClientSettings::from_api(
        &api,
        MetaClientSettings::DEFAULT_TIMEOUT,
    ))
    .unwrap();
    let mut wamids = Vec::with_capacity(SENDS);
    for i in 0..SENDS {
        let message = OutgoingMessage {
            to: format!("9198{i:08}"),
            content: MessageContent::Template(TemplateMessage {
                name: "order_shipped".to_owned(),
                language: "en_US".to_owned(),
                body_parameters: vec![format!("Customer {i}")],
            }),
            biz_opaque_callback_data: None,
        };
        wamids.push(
            client
                .send(&api.phone_number_id, &message)
                .await
                .unwrap()
                .wamid,
        );
    }
    wamids
}

#[tokio::test]
async fn duplicated_reordered_batched_statuses_through_the_simulator_are_stored_once_each() {
    let stores = TestStores::new().await;
    let worker = RunningService::start::<WebhookWorker>(&fast_env(&stores)).await;
    let sim = Sim::start(worker.url("/webhook/meta"), noisy_behaviour()).await;
    let wamids = send_templates(&stores.env().with("META_API_BASE", &sim.base)).await;
    let accepted: HashSet<String> = sim
        .get("/_sim/messages")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["wamid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accepted, wamids.iter().cloned().collect::<HashSet<_>>());
    assert_eq!(accepted.len(), SENDS);

    // `read` is every message's last status: once all are stored, every earlier status was
    // batched and posted, so nothing pending at the simulator means everything arrived.
    let settled = eventually(Duration::from_secs(30), || async {
        let read = scalar(
            &stores.pg,
            "SELECT count(*) FROM message_status_events WHERE status = 'READ'",
        )
        .await;
        let unprocessed = scalar(
            &stores.pg,
            "SELECT count(*) FROM webhook_inbox WHERE state <> 'PROCESSED'",
        )
        .await;
        let webhooks = sim.webhooks().await;
        let quiet = webhooks["summary"]["pending"] == 0;
        (read == SENDS as i64 && unprocessed == 0 && quiet).then_some(webhooks)
    })
    .await;
    let webhooks = settled.expect("every status webhook was acknowledged and processed");

    // What the simulator posted: each distinct body twice.
    let deliveries = webhooks["deliveries"].as_array().unwrap();
    let mut copies: HashMap<&str, (u64, u64)> = HashMap::new();
    for delivery in deliveries {
        assert_eq!(delivery["kind"], "statuses");
        assert_eq!(delivery["acked"], true);
        let entry = copies
            .entry(delivery["body_sha256"].as_str().unwrap())
            .or_default();
        entry.0 += 1;
        entry.1 = delivery["items"].as_u64().unwrap();
    }
    assert!(copies.values().all(|(n, _)| *n == 2), "duplicate_rate 1.0");
    assert_eq!(
        webhooks["summary"]["posted"].as_u64().unwrap(),
        2 * copies.len() as u64
    );
    assert!(
        copies.values().any(|(_, items)| *items > 1),
        "statuses were batched"
    );
    let statuses_posted: u64 = copies.values().map(|(_, items)| items).sum();

    // What the worker stored: one inbox row per distinct body, one event per status.
    let stored_bodies: HashSet<String> =
        sqlx::query_scalar("SELECT encode(body_sha256, 'hex') FROM webhook_inbox")
            .fetch_all(&stores.pg)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let posted_bodies: HashSet<String> = copies.keys().map(|k| (*k).to_owned()).collect();
    assert_eq!(stored_bodies, posted_bodies, "duplicate bodies stored once");
    assert_eq!(
        scalar(&stores.pg, "SELECT count(*) FROM webhook_inbox").await,
        copies.len() as i64
    );
    assert_eq!(
        scalar(&stores.pg, "SELECT count(*) FROM message_status_events").await,
        statuses_posted as i64,
        "every status the simulator produced is stored exactly once"
    );

    let per_message: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT wa_message_id, \
                count(*) FILTER (WHERE status = 'SENT'), \
                count(*) FILTER (WHERE status = 'DELIVERED'), \
                count(*) FILTER (WHERE status = 'READ'), \
                count(*) FILTER (WHERE status NOT IN ('SENT', 'DELIVERED', 'READ')) \
         FROM message_status_events GROUP BY wa_message_id",
    )
    .fetch_all(&stores.pg)
    .await
    .unwrap();
    assert_eq!(
        per_message
            .iter()
            .map(|(wamid, ..)| wamid.clone())
            .collect::<HashSet<_>>(),
        accepted
    );
    for (wamid, sent, delivered, read, other) in &per_message {
        assert_eq!((*sent, *read, *other), (1, 1, 0), "{wamid}");
        assert!(*delivered <= 1, "{wamid}");
    }
    let duplicates = scalar(
        &stores.pg,
        "SELECT count(*) FROM (SELECT 1 FROM message_status_events \
         GROUP BY wa_message_id, status HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(duplicates, 0);

    sim.stop().await;
    worker.stop().await.unwrap();
    stores.cleanup_redis().await;
}
