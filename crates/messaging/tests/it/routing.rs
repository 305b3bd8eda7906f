//! Which vendor an inbound message lands with, and what its log row holds.

use kloyst_messaging::InboundReport;
use kloyst_testkit::TestStores;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_message_goes_to_the_vendor_that_last_messaged_the_number() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let first = new_vendor(pg, "First").await;
    let later = new_vendor(pg, "Later").await;
    let fallback = new_vendor(pg, "Fallback").await;
    sent_to(pg, first, "919876543210").await;
    sent_to(pg, later, "919876543210").await;
    // Another number's history does not count.
    sent_to(pg, first, "919812345678").await;

    let value = change(vec![text(
        "wamid.R1",
        "919876543210",
        1_749_416_383,
        "Does it come in blue?",
    )]);
    let report = deliver(pg, &settings(Some(fallback), ""), &value).await;
    assert_eq!(
        report,
        InboundReport {
            recorded: 1,
            ..Default::default()
        }
    );

    let [log] = logs(pg, "wamid.R1").await.try_into().unwrap();
    assert_eq!(log.vendor_id, later);
    assert_eq!(
        (log.direction.as_str(), log.status.as_str()),
        ("INBOUND", "RECEIVED")
    );
    assert_eq!(log.message_type, "text");
    assert_eq!(log.recipient, "919876543210");
    assert_eq!(log.country.as_deref(), Some("IN"));
    assert_eq!(log.phone_number_id.as_deref(), Some(PHONE_NUMBER_ID));
    assert_eq!(log.received_at, Some(at(1_749_416_383)));
    let body = log.body.unwrap();
    assert_eq!(body["text"]["body"], "Does it come in blue?");
    assert_eq!(body["id"], "wamid.R1");

    // The number became the later vendor's contact, named after the WhatsApp profile.
    let stored = contact(pg, later, "919876543210").await.unwrap();
    assert_eq!(log.contact_id, Some(stored.id));
    assert_eq!(stored.name.as_deref(), Some("Customer 919876543210"));
    assert_eq!(stored.country.as_deref(), Some("IN"));
    assert!(!stored.opted_out);
    assert!(contact(pg, first, "919876543210").await.is_none());
    assert!(contact(pg, fallback, "919876543210").await.is_none());
}

#[tokio::test]
async fn an_existing_contact_keeps_its_name() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "Acme").await;
    let id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO contacts (vendor_id, mobile, attributes) VALUES ($1, '919876543210', $2) RETURNING id",
    )
    .bind(vendor)
    .bind(json!({ "name": "Asha Rao", "city": "Pune" }))
    .fetch_one(pg)
    .await
    .unwrap();
    sent_to(pg, vendor, "919876543210").await;

    deliver(
        pg,
        &settings(None, ""),
        &change(vec![text("wamid.N1", "919876543210", 1_700_000_000, "hi")]),
    )
    .await;

    let stored = contact(pg, vendor, "919876543210").await.unwrap();
    assert_eq!(stored.id, id);
    assert_eq!(stored.name.as_deref(), Some("Asha Rao"));
    // The missing country was filled in from the number.
    assert_eq!(stored.country.as_deref(), Some("IN"));
    assert_eq!(logs(pg, "wamid.N1").await[0].contact_id, Some(id));
}

#[tokio::test]
async fn a_number_nobody_messaged_goes_to_the_default_vendor() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let default = new_vendor(pg, "Default").await;

    let value = change(vec![text(
        "wamid.D1",
        "16505551234",
        1_749_416_383,
        "hello",
    )]);
    let report = deliver(pg, &settings(Some(default), ""), &value).await;

    assert_eq!(report.recorded, 1);
    let [log] = logs(pg, "wamid.D1").await.try_into().unwrap();
    assert_eq!(log.vendor_id, default);
    assert_eq!(log.country.as_deref(), Some("US"));
    assert!(contact(pg, default, "16505551234").await.is_some());
}

#[tokio::test]
async fn without_history_or_default_a_message_is_unrouted() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "Acme").await;
    sent_to(pg, vendor, "919876543210").await;

    let value = change(vec![
        text("wamid.U1", "16505551234", 1_749_416_383, "STOP"),
        text("wamid.U2", "919876543210", 1_749_416_384, "routed"),
        // Neither a number nor a user id: nothing to route by.
        json!({ "id": "wamid.U3", "timestamp": "1749416385", "type": "text", "text": { "body": "?" } }),
    ]);
    let report = deliver(pg, &settings(None, ""), &value).await;

    assert_eq!(
        report,
        InboundReport {
            recorded: 1,
            unrouted: 2,
            ..Default::default()
        }
    );
    assert!(logs(pg, "wamid.U1").await.is_empty());
    assert!(logs(pg, "wamid.U3").await.is_empty());
    assert_eq!(logs(pg, "wamid.U2").await.len(), 1);
    let contacts: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
        .fetch_one(pg)
        .await
        .unwrap();
    assert_eq!(contacts, 1);
}

#[tokio::test]
async fn a_sender_known_only_by_user_id_goes_to_the_default_vendor_without_a_contact() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let default = new_vendor(pg, "Default").await;
    let message = json!({
        "from_user_id": "IN.13491208655302741918", "id": "wamid.B1", "timestamp": "1749416383",
        "type": "text", "text": { "body": "STOP" }
    });

    let unrouted = deliver(pg, &settings(None, ""), &change(vec![message.clone()])).await;
    assert_eq!(unrouted.unrouted, 1);

    let report = deliver(pg, &settings(Some(default), ""), &change(vec![message])).await;
    assert_eq!(
        report,
        InboundReport {
            recorded: 1,
            ..Default::default()
        }
    );
    let [log] = logs(pg, "wamid.B1").await.try_into().unwrap();
    assert_eq!(log.vendor_id, default);
    assert_eq!(log.recipient, "IN.13491208655302741918");
    assert_eq!((log.contact_id, log.country), (None, None));
}

#[tokio::test]
async fn odd_message_types_are_recorded_as_unknown() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let default = new_vendor(pg, "Default").await;
    let value = change(vec![json!({
        "from": "919876543210", "id": "wamid.T1", "timestamp": 1_749_416_383,
        "type": "Some-New-Type!"
    })]);

    let report = deliver(pg, &settings(Some(default), ""), &value).await;

    assert_eq!(report.recorded, 1);
    assert_eq!(logs(pg, "wamid.T1").await[0].message_type, "unknown");
}
