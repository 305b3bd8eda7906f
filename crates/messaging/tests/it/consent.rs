//! Opt-out / opt-in keywords: what changes, when, and what never changes twice.

use kloyst_messaging::InboundReport;
use kloyst_testkit::TestStores;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

const NUMBER: &str = "919876543210";

/// Fresh stores and a vendor that has messaged [`NUMBER`].
async fn vendor_with_history(stores: &TestStores) -> Uuid {
    let vendor = new_vendor(&stores.pg, "Acme").await;
    sent_to(&stores.pg, vendor, NUMBER).await;
    vendor
}

async fn send_text(
    pg: &PgPool,
    wamid: &str,
    from: &str,
    timestamp: i64,
    body: &str,
) -> InboundReport {
    deliver(
        pg,
        &settings(None, "band karo"),
        &change(vec![text(wamid, from, timestamp, body)]),
    )
    .await
}

#[tokio::test]
async fn opt_out_keywords_opt_out_with_the_time_and_wamid() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "Acme").await;
    let cases = [
        ("919800000001", "STOP", "keyword STOP"),
        ("919800000002", " stop \n", "keyword STOP"),
        ("919800000003", "UNSUBSCRIBE", "keyword UNSUBSCRIBE"),
        ("919800000004", "Band Karo", "keyword band karo"),
    ];
    for (i, (number, body, reason)) in cases.into_iter().enumerate() {
        sent_to(pg, vendor, number).await;
        let wamid = format!("wamid.S{i}");
        let sent_at = 1_749_416_000 + i as i64;

        let report = send_text(pg, &wamid, number, sent_at, body).await;

        assert_eq!(
            report,
            InboundReport {
                recorded: 1,
                opted_out: 1,
                ..Default::default()
            },
            "{body:?}"
        );
        let stored = contact(pg, vendor, number).await.unwrap();
        assert!(stored.opted_out, "{body:?}");
        assert_eq!(stored.opted_out_at, Some(at(sent_at)));
        assert_eq!(stored.opt_out_source.as_deref(), Some("INBOUND_KEYWORD"));
        assert_eq!(stored.opt_out_reason.as_deref(), Some(reason));
        assert_eq!(
            stored.opt_out_wa_message_id.as_deref(),
            Some(wamid.as_str())
        );
        let [(action, actor, details)] = audit(pg, stored.id).await.try_into().unwrap();
        assert_eq!(
            (action.as_str(), actor.as_str()),
            ("contact.opted_out", "SYSTEM")
        );
        assert_eq!(details["wamid"], wamid.as_str());
        assert_eq!(details["inbox_id"], 42);
    }
}

#[tokio::test]
async fn conversation_that_merely_mentions_stop_changes_nothing() {
    let stores = TestStores::new().await;
    let vendor = vendor_with_history(&stores).await;

    let report = send_text(
        &stores.pg,
        "wamid.C1",
        NUMBER,
        1_749_416_383,
        "please don't stop the offers",
    )
    .await;

    assert_eq!(
        report,
        InboundReport {
            recorded: 1,
            ..Default::default()
        }
    );
    let stored = contact(&stores.pg, vendor, NUMBER).await.unwrap();
    assert!(!stored.opted_out);
    assert!(audit(&stores.pg, stored.id).await.is_empty());
}

#[tokio::test]
async fn start_opts_back_in() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;
    send_text(pg, "wamid.1", NUMBER, 1_000, "STOP").await;

    let report = send_text(pg, "wamid.2", NUMBER, 2_000, "start").await;

    assert_eq!(
        report,
        InboundReport {
            recorded: 1,
            opted_in: 1,
            ..Default::default()
        }
    );
    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert!(!stored.opted_out);
    assert_eq!(
        (
            stored.opted_out_at,
            stored.opt_out_source,
            stored.opt_out_reason,
            stored.opt_out_wa_message_id
        ),
        (None, None, None, None)
    );
    let actions: Vec<String> = audit(pg, stored.id)
        .await
        .into_iter()
        .map(|(a, _, _)| a)
        .collect();
    assert_eq!(actions, ["contact.opted_out", "contact.opted_in"]);
}

#[tokio::test]
async fn stop_then_start_delivered_in_reverse_order_ends_opted_in() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;

    // START (sent at t=20) arrives first, to a contact who never opted out.
    let start = send_text(pg, "wamid.START", NUMBER, 20, "START").await;
    assert_eq!(
        start,
        InboundReport {
            recorded: 1,
            ..Default::default()
        }
    );
    // The STOP sent before it (t=10) arrives late: it is logged but decides nothing.
    let stop = send_text(pg, "wamid.STOP", NUMBER, 10, "STOP").await;
    assert_eq!(
        stop,
        InboundReport {
            recorded: 1,
            ..Default::default()
        }
    );

    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert!(!stored.opted_out);
    assert!(audit(pg, stored.id).await.is_empty());
    assert_eq!(logs(pg, "wamid.STOP").await.len(), 1);
}

#[tokio::test]
async fn a_stop_and_a_start_in_the_same_second_end_opted_out_in_either_order() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;
    // STOP first, START in the same second: the START does not undo it.
    send_text(pg, "wamid.S1", NUMBER, 40, "STOP").await;
    send_text(pg, "wamid.S2", NUMBER, 40, "START").await;
    assert!(contact(pg, vendor, NUMBER).await.unwrap().opted_out);
    // START first (after an opt-in at 50), STOP in the same second: the STOP applies.
    send_text(pg, "wamid.S3", NUMBER, 50, "START").await;
    assert!(!contact(pg, vendor, NUMBER).await.unwrap().opted_out);
    send_text(pg, "wamid.S4", NUMBER, 50, "STOP").await;
    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert!(stored.opted_out);
    assert_eq!(stored.opt_out_wa_message_id.as_deref(), Some("wamid.S4"));
}

#[tokio::test]
async fn in_one_change_the_order_of_timestamps_wins_too() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;
    let value = change(vec![
        text("wamid.B", NUMBER, 30, "STOP"),
        text("wamid.A", NUMBER, 20, "START"),
    ]);

    let report = deliver(pg, &settings(None, ""), &value).await;

    assert_eq!(
        report,
        InboundReport {
            recorded: 2,
            opted_out: 1,
            ..Default::default()
        }
    );
    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert!(stored.opted_out);
    assert_eq!(stored.opt_out_wa_message_id.as_deref(), Some("wamid.B"));
}

#[tokio::test]
async fn a_keyword_older_than_an_opt_out_made_elsewhere_is_ignored() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;
    send_text(pg, "wamid.hello", NUMBER, 1_000, "hello").await;
    // An admin opts the contact out now (as the directory's PATCH does).
    sqlx::query(
        "UPDATE contacts SET opted_out = true, opted_out_at = now(), opt_out_source = 'ADMIN'
         WHERE vendor_id = $1 AND mobile = $2",
    )
    .bind(vendor)
    .bind(NUMBER)
    .execute(pg)
    .await
    .unwrap();

    // A START the customer sent long before that arrives late.
    let report = send_text(pg, "wamid.old-start", NUMBER, 2_000, "START").await;

    assert_eq!(report.opted_in, 0);
    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert!(stored.opted_out);
    assert_eq!(stored.opt_out_source.as_deref(), Some("ADMIN"));
}

#[tokio::test]
async fn a_duplicate_wamid_is_recorded_once_and_its_stop_not_reapplied() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;
    let stop = change(vec![text("wamid.DUP", NUMBER, 1_000, "STOP")]);
    let settings = settings(None, "");
    assert_eq!(deliver(pg, &settings, &stop).await.opted_out, 1);
    send_text(pg, "wamid.START", NUMBER, 2_000, "START").await;

    // Meta redelivers the STOP, alone and twice within one change.
    let again = deliver(pg, &settings, &stop).await;
    let twice = change(vec![
        text("wamid.DUP", NUMBER, 1_000, "STOP"),
        text("wamid.DUP", NUMBER, 1_000, "STOP"),
    ]);
    let twice = deliver(pg, &settings, &twice).await;

    assert_eq!(
        again,
        InboundReport {
            duplicates: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        twice,
        InboundReport {
            duplicates: 2,
            ..Default::default()
        }
    );
    assert_eq!(logs(pg, "wamid.DUP").await.len(), 1);
    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert!(!stored.opted_out);
    let actions: Vec<String> = audit(pg, stored.id)
        .await
        .into_iter()
        .map(|(a, _, _)| a)
        .collect();
    assert_eq!(actions, ["contact.opted_out", "contact.opted_in"]);
}

#[tokio::test]
async fn a_first_message_with_a_repeated_wamid_in_one_change_counts_once() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;
    let value = change(vec![
        text("wamid.X", NUMBER, 1_000, "STOP"),
        text("wamid.X", NUMBER, 1_000, "STOP"),
    ]);

    let report = deliver(pg, &settings(None, ""), &value).await;

    assert_eq!(
        report,
        InboundReport {
            recorded: 1,
            duplicates: 1,
            opted_out: 1,
            ..Default::default()
        }
    );
    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert_eq!(audit(pg, stored.id).await.len(), 1);
}

#[tokio::test]
async fn a_button_reply_unsubscribe_opts_out() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;
    let value = change(vec![json!({
        "from": NUMBER, "id": "wamid.BTN", "timestamp": "1749416384", "type": "button",
        "context": { "from": "15550783881", "id": "wamid.campaign" },
        "button": { "payload": "unsub-42", "text": "Unsubscribe" }
    })]);

    let report = deliver(pg, &settings(None, ""), &value).await;

    assert_eq!(
        report,
        InboundReport {
            recorded: 1,
            opted_out: 1,
            ..Default::default()
        }
    );
    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert!(stored.opted_out);
    assert_eq!(
        stored.opt_out_reason.as_deref(),
        Some("keyword UNSUBSCRIBE")
    );
    assert_eq!(stored.opt_out_wa_message_id.as_deref(), Some("wamid.BTN"));
    assert_eq!(logs(pg, "wamid.BTN").await[0].message_type, "button");
}

#[tokio::test]
async fn an_image_is_recorded_without_keyword_effects() {
    let stores = TestStores::new().await;
    let pg = &stores.pg;
    let vendor = vendor_with_history(&stores).await;
    let value = change(vec![json!({
        "from": NUMBER, "id": "wamid.IMG", "timestamp": "1749416385", "type": "image",
        "image": { "caption": "STOP", "mime_type": "image/jpeg", "id": "1234" }
    })]);

    let report = deliver(pg, &settings(None, ""), &value).await;

    assert_eq!(
        report,
        InboundReport {
            recorded: 1,
            ..Default::default()
        }
    );
    let [log] = logs(pg, "wamid.IMG").await.try_into().unwrap();
    assert_eq!(log.message_type, "image");
    let stored = contact(pg, vendor, NUMBER).await.unwrap();
    assert!(!stored.opted_out);
    assert!(audit(pg, stored.id).await.is_empty());
}
