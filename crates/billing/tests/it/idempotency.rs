//! Exactly once per reference: replays answer the first result, sequentially and
//! concurrently; a reference reused for something else is a conflict.

use kloyst_billing::{BillingError, HoldRequest, Posted};

use crate::helpers::*;

#[tokio::test]
async fn a_reference_posted_1_2_and_5_times_posts_once() {
    let (_stores, ledger) = setup().await;
    let vendor = new_wallet(&ledger.pg, d("0")).await;
    let mut expected_rows = 0;
    for times in [1, 2, 5] {
        let reference = reference("recharge:pay");
        let mut answers: Vec<Posted> = Vec::new();
        for _ in 0..times {
            answers.push(
                ledger
                    .post_credit(vendor, recharge(&reference, "100"))
                    .await
                    .unwrap(),
            );
        }
        expected_rows += 1;
        assert!(!answers[0].replayed);
        assert!(answers[1..].iter().all(|a| a.replayed));
        assert!(answers.iter().all(|a| same_posting(a, &answers[0])));
        assert_eq!(ledger_rows(&ledger.pg, vendor).await, expected_rows);
    }
    assert_eq!(figures(&ledger, vendor).await.0, d("300"));

    // Debits, holds and releases replay too.
    let debit_ref = reference("debit");
    let first = ledger
        .post_debit(vendor, debit(&debit_ref, "2", None))
        .await
        .unwrap();
    let again = ledger
        .post_debit(vendor, debit(&debit_ref, "2", None))
        .await
        .unwrap();
    assert!(again.replayed && same_posting(&first, &again));
    let request = HoldRequest {
        amount: d("50"),
        reference: reference("hold:campaign"),
        campaign_id: None,
    };
    let hold = ledger.hold(vendor, request.clone()).await.unwrap();
    let hold_again = ledger.hold(vendor, request).await.unwrap();
    assert_eq!(hold_again.id, hold.id);
    assert!(hold_again.posted.replayed && same_posting(&hold.posted, &hold_again.posted));
    let release_ref = reference("release:campaign");
    let released = ledger.release(vendor, hold.id, &release_ref).await.unwrap();
    let released_again = ledger.release(vendor, hold.id, &release_ref).await.unwrap();
    assert!(released_again.replayed && same_posting(&released, &released_again));
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 6);
    assert_eq!(figures(&ledger, vendor).await, (d("298"), d("0"), d("298")));
}

#[tokio::test]
async fn the_same_reference_from_8_concurrent_tasks_posts_once() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "100", "0").await;
    for kind in ["credit", "debit"] {
        let reference = reference(kind);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let ledger = ledger.clone();
                let reference = reference.clone();
                tokio::spawn(async move {
                    if kind == "credit" {
                        ledger.post_credit(vendor, recharge(&reference, "7")).await
                    } else {
                        ledger
                            .post_debit(vendor, debit(&reference, "3", None))
                            .await
                    }
                })
            })
            .collect();
        let answers: Vec<Posted> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(|joined| joined.unwrap().unwrap())
            .collect();
        assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1, "{kind}");
        assert!(
            answers.iter().all(|a| same_posting(a, &answers[0])),
            "{kind}"
        );
    }
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 3);
    assert_eq!(figures(&ledger, vendor).await.0, d("104"));
}

#[tokio::test]
async fn a_reference_reused_for_another_amount_kind_or_wallet_is_a_conflict() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "100", "0").await;
    let other = funded_wallet(&ledger, "100", "0").await;
    let reference = reference("recharge:pay");
    ledger
        .post_credit(vendor, recharge(&reference, "10"))
        .await
        .unwrap();

    let other_amount = ledger.post_credit(vendor, recharge(&reference, "11")).await;
    let other_kind = ledger
        .post_debit(vendor, debit(&reference, "10", None))
        .await;
    let other_wallet = ledger.post_credit(other, recharge(&reference, "10")).await;
    for result in [other_amount, other_kind, other_wallet] {
        assert!(
            matches!(result, Err(BillingError::ReferenceConflict(_))),
            "{result:?}"
        );
    }
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 2);
    assert_eq!(ledger_rows(&ledger.pg, other).await, 1);
    books(&ledger, vendor).await;
    books(&ledger, other).await;
}
