//! The webhook processing's inline path (`StatusApplier::apply_received`): a batch's statuses
//! stored and applied in its own transaction, duplicates skipped, unknown wamids parked for the
//! applier, inbound wamids dead-lettered, and racing batches charging each message once.

use chrono::Utc;
use kloyst_delivery::{ReceivedReport, ReceivedStatuses, StatusSource, NOT_OUTBOUND};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::*;

/// Meta-shaped status objects as the webhook processing gathers them from one inbox row.
fn received(statuses: &[Value]) -> ReceivedStatuses {
    let parsed: Vec<StatusUpdate> = statuses
        .iter()
        .map(|s| serde_json::from_value(s.clone()).unwrap())
        .collect();
    let mut received = ReceivedStatuses::default();
    received.push(
        StatusSource {
            inbox_id: 7,
            waba_id: "102290129340398",
            phone_number_id: Some("106540352242922"),
        },
        Utc::now(),
        parsed,
        Some(statuses.to_vec()),
    );
    received
}

/// One batch: applied in a transaction of its own, committed.
async fn apply(world: &World, applier: &StatusApplier, statuses: &[Value]) -> ReceivedReport {
    let mut tx = world.pg().begin().await.unwrap();
    let report = applier
        .apply_received(&mut tx, received(statuses))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    report
}

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
struct Stored {
    status: String,
    applied: bool,
    attempts: i32,
    due_later: bool,
    dead_reason: Option<String>,
}

async fn stored(world: &World, wamid: &str) -> Vec<Stored> {
    sqlx::query_as(
        "SELECT status, applied_at IS NOT NULL AS applied, attempts, \
                coalesce(next_attempt_at > now(), false) AS due_later, dead_reason \
           FROM message_status_events WHERE wa_message_id = $1 ORDER BY status",
    )
    .bind(wamid)
    .fetch_all(world.pg())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_batch_is_stored_applied_and_charged_once_and_what_has_no_log_is_parked() {
    let world = World::new().await;
    let vendor = world.vendor("100").await;
    let campaign = world.campaign(&vendor, Some("10")).await;
    for wamid in ["wamid.a", "wamid.b"] {
        world
            .message(&vendor, Some(campaign), wamid, "MARKETING", Some("IN"))
            .await;
    }
    sqlx::query(
        "INSERT INTO message_logs (vendor_id, direction, recipient, wa_message_id, status) \
         VALUES ($1, 'INBOUND', '919800000002', 'wamid.inbound', 'RECEIVED')",
    )
    .bind(vendor.id)
    .execute(world.pg())
    .await
    .unwrap();
    let applier = world.applier(100);
    let mut batch = four("wamid.a");
    batch.push(status(
        "wamid.a",
        "delivered",
        2,
        Some(regular("marketing")),
    )); // twice in one batch
    batch.push(status(
        "wamid.b",
        "delivered",
        3,
        Some(regular("marketing")),
    ));
    batch.push(status(
        "wamid.early",
        "delivered",
        4,
        Some(regular("marketing")),
    ));
    batch.push(status("wamid.inbound", "read", 5, None));

    let report = apply(&world, &applier, &batch).await;
    assert_eq!((report.new, report.duplicates), (7, 1));
    let outcome = report.outcome;
    assert_eq!(
        (
            outcome.applied,
            outcome.parked,
            outcome.dead,
            outcome.charged
        ),
        (5, 1, 1, 2)
    );
    let a = world.log("wamid.a").await;
    assert_eq!(a.status, "READ");
    assert_eq!(a.flags, ["DELIVERY_AND_FAILED"]);
    assert_eq!(a.cost, Some(d(IN_MARKETING)));
    assert_eq!(world.log("wamid.b").await.status, "DELIVERED");
    assert_eq!(world.debits("wamid.a").await, (1, Some(d(IN_MARKETING))));
    assert_eq!(world.debits("wamid.b").await, (1, Some(d(IN_MARKETING))));
    assert!(stored(&world, "wamid.a")
        .await
        .iter()
        .all(|s| s.applied && s.attempts == 0));
    assert_eq!(
        stored(&world, "wamid.early").await,
        [Stored {
            status: "DELIVERED".into(),
            applied: false,
            attempts: 1,
            due_later: true,
            dead_reason: None,
        }],
        "parked as the applier's first park leaves it"
    );
    let inbound = stored(&world, "wamid.inbound").await;
    assert_eq!(inbound[0].dead_reason.as_deref(), Some(NOT_OUTBOUND));

    // Meta redelivers the whole batch: nothing new, nothing charged again.
    let again = apply(&world, &applier, &batch).await;
    assert_eq!((again.new, again.duplicates), (0, 8));
    assert_eq!(again.outcome, kloyst_delivery::ApplyReport::default());
    assert_eq!(world.debits("wamid.a").await.0, 1);

    // The send's commit lands; once the parked status is due, the applier applies it.
    world
        .message(
            &vendor,
            Some(campaign),
            "wamid.early",
            "MARKETING",
            Some("IN"),
        )
        .await;
    world.make_parked_due().await;
    let drained = world.drain(&applier).await;
    assert_eq!((drained.applied, drained.charged), (1, 1));
    assert_eq!(world.log("wamid.early").await.status, "DELIVERED");
    let three = d(IN_MARKETING) * Decimal::from(3);
    assert_eq!(
        world.counters(campaign).await,
        Counters {
            delivered_count: 3,
            read_count: 1,
            failed_count: 0,
            actual_cost: three,
        }
    );
    world.books_ok().await;
}

#[tokio::test]
async fn batches_racing_on_the_same_statuses_charge_each_message_once() {
    let world = World::new().await;
    let vendor = world.vendor("1000").await;
    let campaign = world.campaign(&vendor, Some("200")).await;
    let wamids: Vec<String> = (0..120).map(|i| format!("wamid.inline{i:03}")).collect();
    for wamid in &wamids {
        world
            .message(&vendor, Some(campaign), wamid, "MARKETING", Some("IN"))
            .await;
    }
    let mut statuses: Vec<Value> = wamids.iter().flat_map(|w| four(w)).collect();
    // Every status in three batches of three concurrent transactions, each shuffled
    // differently: Meta's redeliveries racing each other.
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut batches = Vec::new();
    for _ in 0..3 {
        statuses.shuffle(&mut rng);
        batches.push(statuses.clone());
    }
    let applier = world.applier(100);
    let reports =
        futures::future::join_all(batches.iter().map(|batch| apply(&world, &applier, batch))).await;
    let new: u64 = reports.iter().map(|r| r.new).sum();
    let charged: usize = reports.iter().map(|r| r.outcome.charged).sum();
    assert_eq!((new, charged), (480, 120), "{reports:?}");

    let (rows, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT reference) FROM transactions \
          WHERE reference LIKE 'debit:wamid.inline%'",
    )
    .fetch_one(world.pg())
    .await
    .unwrap();
    assert_eq!((rows, distinct), (120, 120));
    for wamid in &wamids {
        let log = world.log(wamid).await;
        assert_eq!(
            (log.status.as_str(), log.cost),
            ("READ", Some(d(IN_MARKETING)))
        );
    }
    assert_eq!(
        world.counters(campaign).await,
        Counters {
            delivered_count: 120,
            read_count: 120,
            failed_count: 0,
            actual_cost: d(IN_MARKETING) * Decimal::from(120),
        }
    );
    world.books_ok().await;
}
