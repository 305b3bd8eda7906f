//! The wallet row lock: concurrent holds never both pass on the same money, and concurrent
//! debits never overdraw.

use kloyst_billing::{BillingError, HoldRequest};

use crate::helpers::*;

#[tokio::test]
async fn two_concurrent_holds_that_together_exceed_available_exactly_one_passes() {
    let (_stores, ledger) = setup().await;
    for _ in 0..5 {
        let vendor = funded_wallet(&ledger, "100", "0").await;
        let place = |ledger: kloyst_billing::Ledger| async move {
            ledger
                .hold(
                    vendor,
                    HoldRequest {
                        amount: d("60"),
                        reference: reference("hold:campaign"),
                        campaign_id: None,
                    },
                )
                .await
        };
        let (a, b) = tokio::join!(
            tokio::spawn(place(ledger.clone())),
            tokio::spawn(place(ledger.clone()))
        );
        let results = [a.unwrap(), b.unwrap()];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results.iter().any(|r| matches!(
            r,
            Err(BillingError::InsufficientFunds { shortfall }) if *shortfall == d("20")
        )));
        assert_eq!(figures(&ledger, vendor).await, (d("100"), d("60"), d("40")));
    }
}

#[tokio::test]
async fn concurrent_debits_stop_exactly_at_the_balance() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "10", "0").await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                ledger
                    .post_debit(vendor, debit(&reference("debit"), "1", None))
                    .await
            })
        })
        .collect();
    let mut passed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => passed += 1,
            Err(BillingError::InsufficientFunds { shortfall }) => assert_eq!(shortfall, d("1")),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(passed, 10);
    assert_eq!(figures(&ledger, vendor).await, (d("0"), d("0"), d("0")));
}
