//! Two appliers on the same statuses at once: every message charged once.

use crate::*;

#[tokio::test]
async fn two_appliers_racing_charge_each_message_once() {
    let world = World::new().await;
    let vendor = world.vendor("500").await;
    let campaign = world.campaign(&vendor, Some("20")).await;
    let wamids: Vec<String> = (0..60).map(|i| format!("wamid.race{i:03}")).collect();
    for wamid in &wamids {
        world
            .message(&vendor, Some(campaign), wamid, "MARKETING", Some("IN"))
            .await;
    }
    // interleaved: a message's statuses land in different batches of different appliers
    let mut statuses = Vec::new();
    for kind in ["read", "sent", "delivered"] {
        for wamid in &wamids {
            let offset = match kind {
                "sent" => 0,
                "delivered" => 2,
                _ => 30,
            };
            statuses.push(status(wamid, kind, offset, Some(regular("marketing"))));
        }
    }
    world.store(&statuses).await;

    let (a, b) = (world.applier(7), world.applier(11));
    let (ra, rb) = tokio::join!(world.drain(&a), world.drain(&b));
    assert_eq!(ra.applied + rb.applied, 180);
    assert_eq!(ra.charged + rb.charged, 60);
    assert!(
        ra.claimed > 0 && rb.claimed > 0,
        "both appliers took part: {ra:?} {rb:?}"
    );

    let (rows, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT reference) FROM transactions \
          WHERE reference LIKE 'debit:wamid.race%'",
    )
    .fetch_one(world.pg())
    .await
    .unwrap();
    assert_eq!((rows, distinct), (60, 60));
    for wamid in &wamids {
        let log = world.log(wamid).await;
        assert_eq!(
            (log.status.as_str(), log.cost),
            ("READ", Some(d(IN_MARKETING)))
        );
    }
    let cost = d(IN_MARKETING) * Decimal::from(60);
    assert_eq!(
        world.counters(campaign).await,
        Counters {
            delivered_count: 60,
            read_count: 60,
            failed_count: 0,
            actual_cost: cost
        }
    );
    world.books_ok().await;
}
