//! Group commit: many callers, several wallets, results routed back to each caller.

use std::collections::HashSet;

use kloyst_billing::{BatcherSettings, BillingError, DebitBatcher};

use crate::helpers::*;

#[tokio::test]
async fn concurrent_callers_are_posted_in_batches_and_each_gets_its_own_result() {
    let (_stores, ledger) = setup().await;
    let hot = funded_wallet(&ledger, "10000", "0").await;
    let cold = funded_wallet(&ledger, "10000", "0").await;
    let (batcher, task) = DebitBatcher::start(ledger.pg.clone(), BatcherSettings::default());

    // 16 callers × 25 debits on the hot wallet (every 5th reference sent twice), and some on
    // the cold one.
    let callers: Vec<_> = (0..16)
        .map(|caller| {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for n in 0..25 {
                    let vendor = if caller == 0 { cold } else { hot };
                    let reference = format!("debit:{vendor}:{caller}:{n}");
                    let first = batcher.debit(vendor, debit(&reference, "1.25", None)).await;
                    answers.push((reference.clone(), first.unwrap()));
                    if n % 5 == 0 {
                        let again = batcher.debit(vendor, debit(&reference, "1.25", None)).await;
                        answers.push((reference, again.unwrap()));
                    }
                }
                answers
            })
        })
        .collect();
    let mut fresh = HashSet::new();
    let mut replayed = 0;
    for caller in callers {
        for (reference, posted) in caller.await.unwrap() {
            assert_eq!(posted.reference, reference);
            assert_eq!(posted.amount, d("-1.25"));
            if posted.replayed {
                replayed += 1;
            } else {
                assert!(fresh.insert(posted.transaction_id));
            }
        }
    }
    assert_eq!(fresh.len(), 400);
    assert_eq!(replayed, 16 * 5);

    // A debit the wallet cannot cover fails alone; its batch-mates are posted.
    let poor = funded_wallet(&ledger, "2", "0").await;
    let (a, b, c) = tokio::join!(
        batcher.debit(poor, debit(&reference("debit"), "1.5", None)),
        batcher.debit(poor, debit(&reference("debit"), "5", None)),
        batcher.debit(poor, debit(&reference("debit"), "0.5", None)),
    );
    assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
    assert!(
        matches!(b, Err(BillingError::InsufficientFunds { shortfall }) if shortfall == d("4.5")),
        "{b:?}"
    );
    let invalid = batcher
        .debit(poor, debit(&reference("debit"), "0.00001", None))
        .await;
    assert!(
        matches!(invalid, Err(BillingError::InvalidAmount(_))),
        "{invalid:?}"
    );

    drop(batcher);
    task.await.unwrap();
    assert_eq!(
        figures(&ledger, hot).await.0,
        d("10000") - d("1.25") * d("375")
    );
    assert_eq!(
        figures(&ledger, cold).await.0,
        d("10000") - d("1.25") * d("25")
    );
    assert_eq!(ledger_rows(&ledger.pg, hot).await, 376);
    assert_eq!(figures(&ledger, poor).await, (d("0"), d("0"), d("0")));
}
