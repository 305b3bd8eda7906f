//! Statuses that arrive before their message log: parked, then applied once it exists;
//! dead-lettered with a reason after the park timeout; never dropped.

use crate::*;

#[derive(Debug, sqlx::FromRow)]
struct Event {
    attempts: i32,
    due_later: Option<bool>,
    applied: bool,
    dead_reason: Option<String>,
}

async fn event(world: &World, wamid: &str) -> Event {
    sqlx::query_as(
        "SELECT attempts, next_attempt_at > now() AS due_later, applied_at IS NOT NULL AS applied, \
                dead_reason \
           FROM message_status_events WHERE wa_message_id = $1",
    )
    .bind(wamid)
    .fetch_one(world.pg())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_status_before_its_log_is_parked_then_applied_and_charged() {
    let world = World::new().await;
    let vendor = world.vendor("50").await;
    let campaign = world.campaign(&vendor, Some("5")).await;
    let applier = world.applier(100);

    world
        .store(&[status(
            "wamid.early",
            "delivered",
            2,
            Some(regular("marketing")),
        )])
        .await;
    let report = applier.apply_batch().await.unwrap();
    assert_eq!((report.claimed, report.parked, report.applied), (1, 1, 0));
    let parked = event(&world, "wamid.early").await;
    assert_eq!(
        (parked.attempts, parked.due_later, parked.applied),
        (1, Some(true), false)
    );
    // not due yet: the next batch does not claim it
    assert_eq!(applier.apply_batch().await.unwrap().claimed, 0);

    // the send's commit lands; the backoff passes
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
    let report = applier.apply_batch().await.unwrap();
    assert_eq!((report.applied, report.parked, report.charged), (1, 0, 1));
    assert!(event(&world, "wamid.early").await.applied);
    let log = world.log("wamid.early").await;
    assert_eq!(
        (log.status.as_str(), log.cost),
        ("DELIVERED", Some(d(IN_MARKETING)))
    );
    assert_eq!(world.debits("wamid.early").await.0, 1);
    assert_eq!(world.counters(campaign).await.delivered_count, 1);
    world.books_ok().await;
}

#[tokio::test]
async fn a_status_whose_log_never_appears_is_dead_lettered_with_the_reason() {
    let world = World::new().await;
    let applier = world.applier(100);
    world.store(&[status("wamid.ghost", "sent", 0, None)]).await;
    // received 11 minutes ago: past the 10-minute park timeout
    sqlx::query("UPDATE message_status_events SET received_at = now() - interval '11 minutes'")
        .execute(world.pg())
        .await
        .unwrap();
    let report = applier.apply_batch().await.unwrap();
    assert_eq!((report.claimed, report.dead, report.parked), (1, 1, 0));
    let dead = event(&world, "wamid.ghost").await;
    assert_eq!(
        dead.dead_reason.as_deref(),
        Some(kloyst_delivery::NO_MESSAGE)
    );
    assert!(!dead.applied);
    // kept, and never claimed again
    assert_eq!(applier.apply_batch().await.unwrap().claimed, 0);
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM message_status_events")
        .fetch_one(world.pg())
        .await
        .unwrap();
    assert_eq!(kept, 1);
}
