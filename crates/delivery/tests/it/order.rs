//! Every order of Meta's four statuses, with duplicates, over several batches: the same final
//! row and exactly one ledger row per delivered message.

use chrono::{TimeZone, Utc};

use crate::*;

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for tail in permutations(n - 1) {
        for at in 0..=tail.len() {
            let mut p = tail.clone();
            p.insert(at, n - 1);
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn every_order_with_duplicates_ends_in_one_state_and_one_charge() {
    let world = World::new().await;
    let vendor = world.vendor("100").await;
    let campaign = world.campaign(&vendor, Some("10")).await;
    let orders = permutations(4);
    assert_eq!(orders.len(), 24);
    let wamids: Vec<String> = (0..orders.len())
        .map(|i| format!("wamid.order{i:02}"))
        .collect();
    for wamid in &wamids {
        world
            .message(&vendor, Some(campaign), wamid, "MARKETING", Some("IN"))
            .await;
    }
    let failed_only = "wamid.failedonly";
    world
        .message(
            &vendor,
            Some(campaign),
            failed_only,
            "MARKETING",
            Some("IN"),
        )
        .await;

    // Step k stores the k-th status of each order, plus the previous one again (Meta's
    // retries); small batches split each step over several transactions.
    let applier = world.applier(7);
    for step in 0..4 {
        let mut statuses = Vec::new();
        for (order, wamid) in orders.iter().zip(&wamids) {
            let all = four(wamid);
            statuses.push(all[order[step]].clone());
            if step > 0 {
                statuses.push(all[order[step - 1]].clone());
            }
        }
        if step == 0 {
            statuses.push(status(failed_only, "failed", 5, None));
        }
        world.store(&statuses).await;
        world.drain(&applier).await;
        world.books_ok().await;
    }

    let first = world.log(&wamids[0]).await;
    let at = |offset: i64| Some(Utc.timestamp_opt(T0 + offset, 0).unwrap());
    assert_eq!(first.status, "READ");
    assert_eq!(first.status_at, at(30));
    assert_eq!(
        (
            first.sent_at,
            first.delivered_at,
            first.read_at,
            first.failed_at
        ),
        (at(0), at(2), at(30), at(5))
    );
    assert_eq!(first.flags, vec!["DELIVERY_AND_FAILED".to_owned()]);
    assert_eq!(first.error_code, Some(131_049));
    assert_eq!(first.pricing_category.as_deref(), Some("MARKETING"));
    assert_eq!(first.market.as_deref(), Some("India"));
    assert_eq!(first.cost, Some(d(IN_MARKETING)));
    assert!(first.charged);
    for wamid in &wamids {
        let log = world.log(wamid).await;
        assert_eq!(
            Log {
                ledger_transaction_id: first.ledger_transaction_id,
                ..log
            },
            first,
            "{wamid}"
        );
        assert_eq!(
            world.debits(wamid).await,
            (1, Some(d(IN_MARKETING))),
            "{wamid}"
        );
        let (ledger_id,): (i64,) =
            sqlx::query_as("SELECT id FROM transactions WHERE reference = 'debit:' || $1")
                .bind(wamid)
                .fetch_one(world.pg())
                .await
                .unwrap();
        assert_eq!(log.ledger_transaction_id, Some(ledger_id));
    }

    let failed = world.log(failed_only).await;
    assert_eq!((failed.status.as_str(), failed.charged), ("FAILED", false));
    assert_eq!(failed.error_code, Some(131_049));
    assert_eq!(world.debits(failed_only).await, (0, None));

    // funnel counters: every ordered message is delivered and read; only the failed-only one
    // stays failed (the ones that failed first moved out again)
    let total = d(IN_MARKETING) * Decimal::from(24);
    assert_eq!(
        world.counters(campaign).await,
        Counters {
            delivered_count: 24,
            read_count: 24,
            failed_count: 1,
            actual_cost: total,
        }
    );
    // the hold (10) was captured first, the rest came from the balance
    let (captured, remaining): (Decimal, Decimal) =
        sqlx::query_as("SELECT captured, remaining FROM wallet_holds WHERE campaign_id = $1")
            .bind(campaign)
            .fetch_one(world.pg())
            .await
            .unwrap();
    assert_eq!((captured, remaining), (d("10"), d("0")));
    let wallet = world
        .ledger
        .wallet(VendorId::from_uuid(vendor.id))
        .await
        .unwrap();
    assert_eq!((wallet.balance, wallet.held), (d("100") - total, d("0")));

    // every status applied, nothing left; a replay of all of them changes nothing
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM message_status_events WHERE applied_at IS NULL")
            .fetch_one(world.pg())
            .await
            .unwrap();
    assert_eq!(left, 0);
    let replay: Vec<Value> = wamids.iter().flat_map(|w| four(w)).collect();
    assert_eq!(
        world.store(&replay).await,
        0,
        "duplicates are dropped at insert"
    );
    sqlx::query("UPDATE message_status_events SET applied_at = NULL")
        .execute(world.pg())
        .await
        .unwrap();
    let report = world.drain(&applier).await;
    assert_eq!((report.applied, report.charged), (97, 0));
    assert_eq!(world.counters(campaign).await.actual_cost, total);
    assert_eq!(world.log(&wamids[3]).await.cost, Some(d(IN_MARKETING)));
    world.books_ok().await;
}
