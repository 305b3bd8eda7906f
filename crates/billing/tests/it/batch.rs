//! The batch path: one transaction for many debits, exactly once per reference, captures
//! split between hold and free balance.

use kloyst_billing::{BillingError, HoldRequest, HoldStatus};

use crate::helpers::*;

#[tokio::test]
async fn duplicates_within_a_batch_and_references_posted_before_are_replayed() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "100", "0").await;
    let earlier = reference("debit");
    let first = ledger
        .post_debit(vendor, debit(&earlier, "5", None))
        .await
        .unwrap();

    let (a, b) = (reference("debit"), reference("debit"));
    let batch = [
        debit(&a, "1", None),
        debit(&earlier, "5", None),
        debit(&b, "2", None),
        debit(&a, "1", None),
    ];
    let posted = ledger.post_debits(vendor, &batch).await.unwrap();
    assert_eq!(posted.len(), 4);
    assert!(!posted[0].replayed && !posted[2].replayed);
    assert!(posted[1].replayed && same_posting(&posted[1], &first));
    assert!(posted[3].replayed && same_posting(&posted[3], &posted[0]));
    // Running figures, ids in order.
    assert_eq!(posted[0].balance_after, d("94"));
    assert_eq!(posted[2].balance_after, d("92"));
    assert!(posted[0].transaction_id < posted[2].transaction_id);
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 4);
    assert_eq!(figures(&ledger, vendor).await, (d("92"), d("0"), d("92")));

    // The whole batch again: all replayed, nothing posted.
    let again = ledger.post_debits(vendor, &batch).await.unwrap();
    assert!(again.iter().all(|p| p.replayed));
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 4);

    // The same reference twice in a batch with different amounts is a conflict.
    let c = reference("debit");
    let result = ledger
        .post_debits(vendor, &[debit(&c, "1", None), debit(&c, "2", None)])
        .await;
    assert!(
        matches!(result, Err(BillingError::ReferenceConflict(_))),
        "{result:?}"
    );
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 4);
}

#[tokio::test]
async fn captures_take_from_the_hold_first_and_the_rest_from_free_balance() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "100", "0").await;
    let hold = ledger
        .hold(
            vendor,
            HoldRequest {
                amount: d("10"),
                reference: reference("hold:campaign"),
                campaign_id: None,
            },
        )
        .await
        .unwrap();
    let other_hold = ledger
        .hold(
            vendor,
            HoldRequest {
                amount: d("20"),
                reference: reference("hold:campaign"),
                campaign_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(figures(&ledger, vendor).await, (d("100"), d("30"), d("70")));

    let posted = ledger
        .post_debits(
            vendor,
            &[
                debit(&reference("debit"), "4", Some(hold.id)),
                debit(&reference("debit"), "4", Some(hold.id)),
                // 2 left on the hold: 2 captured, 1.5 from free balance.
                debit(&reference("debit"), "3.5", Some(hold.id)),
                debit(&reference("debit"), "1", Some(hold.id)),
                debit(&reference("debit"), "0.25", Some(other_hold.id)),
                debit(&reference("debit"), "2", None),
            ],
        )
        .await
        .unwrap();
    let deltas: Vec<_> = posted.iter().map(|p| p.hold_delta).collect();
    assert_eq!(
        deltas,
        [d("-4"), d("-4"), d("-2"), d("0"), d("-0.25"), d("0")]
    );
    assert_eq!(posted[3].hold_id, None);
    // balance 100 − 14.75; held 30 − 10.25; available 70 − 1.5 − 1 − 2
    assert_eq!(
        figures(&ledger, vendor).await,
        (d("85.25"), d("19.75"), d("65.5"))
    );

    // The first hold was captured in full and closed; the other is still active.
    let closed = ledger.release(vendor, hold.id, &reference("release")).await;
    assert!(
        matches!(closed, Err(BillingError::HoldClosed)),
        "{closed:?}"
    );
    let view = ledger
        .hold(
            vendor,
            HoldRequest {
                amount: d("20"),
                reference: other_hold.reference.clone(),
                campaign_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (view.captured, view.remaining, view.status),
        (d("0.25"), d("19.75"), HoldStatus::Active)
    );
    books(&ledger, vendor).await;
}

#[tokio::test]
async fn a_batch_that_cannot_be_covered_posts_nothing() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "5", "0").await;
    let result = ledger
        .post_debits(
            vendor,
            &[
                debit(&reference("debit"), "3", None),
                debit(&reference("debit"), "3", None),
            ],
        )
        .await;
    assert!(
        matches!(result, Err(BillingError::InsufficientFunds { shortfall }) if shortfall == d("1")),
        "{result:?}"
    );
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 1);
    assert_eq!(figures(&ledger, vendor).await, (d("5"), d("0"), d("5")));
}
