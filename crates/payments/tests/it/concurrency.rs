//! The same event applied by 8 concurrent processors: one credit.

use kloyst_payments::PaymentOutcome;

use crate::support::*;

#[tokio::test]
async fn eight_concurrent_deliveries_of_one_capture_credit_once() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;
    let order = new_order(pg, vendor, 75_000).await;
    let event = captured(&order, &payment_id());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (pg, event) = (pg.clone(), event.clone());
            tokio::spawn(async move { apply(&pg, &event).await })
        })
        .collect();
    let mut credited = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            PaymentOutcome::Credited { .. } => credited += 1,
            PaymentOutcome::AlreadyCredited { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(credited, 1);
    assert_eq!(books(pg, vendor).await.balance, inr(75_000));
    assert_eq!(recharge_rows(pg, vendor).await, 1);
    assert_eq!(receipts(pg, vendor).await.len(), 1);
}
