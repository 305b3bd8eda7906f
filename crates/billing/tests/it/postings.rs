//! Credits, holds, captures, releases, refunds and adjustments by hand, figures checked at
//! each step.

use kloyst_billing::{
    BillingError, Credit, CreditKind, HoldRequest, HoldStatus, Refund, TransactionKind,
};
use kloyst_core::VendorId;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_wallet_moves_through_credits_holds_captures_releases_and_refunds() {
    let (_stores, ledger) = setup().await;
    let vendor = new_wallet(&ledger.pg, d("0")).await;

    let credit = ledger
        .post_credit(vendor, recharge(&reference("recharge:pay"), "1000.50"))
        .await
        .unwrap();
    assert_eq!(credit.kind, TransactionKind::CreditRecharge);
    assert_eq!(
        (credit.balance_after, credit.held_after),
        (d("1000.5"), d("0"))
    );
    assert_eq!(
        figures(&ledger, vendor).await,
        (d("1000.5"), d("0"), d("1000.5"))
    );

    let campaign = Uuid::new_v4();
    let hold = ledger
        .hold(
            vendor,
            HoldRequest {
                amount: d("300"),
                reference: format!("hold:campaign:{campaign}"),
                campaign_id: None, // a real campaign needs a template and a list: covered by the campaigns crate
            },
        )
        .await
        .unwrap();
    assert_eq!(hold.remaining, d("300"));
    assert_eq!(hold.status, HoldStatus::Active);
    assert_eq!(hold.posted.hold_delta, d("300"));
    assert_eq!(
        figures(&ledger, vendor).await,
        (d("1000.5"), d("300"), d("700.5"))
    );

    // 120 captured wholly from the hold: available unchanged.
    let captured = ledger
        .post_debit(vendor, debit(&reference("debit"), "120", Some(hold.id)))
        .await
        .unwrap();
    assert_eq!(
        (captured.amount, captured.hold_delta),
        (d("-120"), d("-120"))
    );
    assert_eq!(
        figures(&ledger, vendor).await,
        (d("880.5"), d("180"), d("700.5"))
    );

    // 0.7915 from free balance (no hold).
    ledger
        .post_debit(vendor, debit(&reference("debit"), "0.7915", None))
        .await
        .unwrap();
    assert_eq!(
        figures(&ledger, vendor).await,
        (d("879.7085"), d("180"), d("699.7085"))
    );

    let released = ledger
        .release(vendor, hold.id, &format!("release:campaign:{campaign}"))
        .await
        .unwrap();
    assert_eq!((released.amount, released.hold_delta), (d("0"), d("-180")));
    assert_eq!(
        figures(&ledger, vendor).await,
        (d("879.7085"), d("0"), d("879.7085"))
    );
    let again = ledger
        .release(vendor, hold.id, &reference("release:campaign"))
        .await;
    assert!(matches!(again, Err(BillingError::HoldClosed)), "{again:?}");

    // A late debit naming the closed hold comes from free balance.
    let late = ledger
        .post_debit(vendor, debit(&reference("debit"), "10", Some(hold.id)))
        .await
        .unwrap();
    assert_eq!((late.hold_delta, late.hold_id), (d("0"), None));

    let refund = ledger
        .post_refund(
            vendor,
            Refund {
                amount: d("69.7085"),
                reference: reference("refund:rfnd"),
                payment_order_id: None,
                description: Some("customer asked".to_owned()),
            },
        )
        .await
        .unwrap();
    assert_eq!(refund.amount, d("-69.7085"));
    assert_eq!(figures(&ledger, vendor).await, (d("800"), d("0"), d("800")));

    let adjustment = |amount: &str| Credit {
        kind: CreditKind::Adjustment,
        amount: d(amount),
        reference: reference("adjustment"),
        payment_order_id: None,
        description: Some("manual correction".to_owned()),
        created_by: None,
    };
    ledger.post_credit(vendor, adjustment("-50")).await.unwrap();
    ledger
        .post_credit(vendor, adjustment("25.25"))
        .await
        .unwrap();
    assert_eq!(
        figures(&ledger, vendor).await,
        (d("775.25"), d("0"), d("775.25"))
    );
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 9);
}

#[tokio::test]
async fn a_debit_beyond_the_balance_is_refused_with_the_shortfall() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "10", "0").await;
    let refused = ledger
        .post_debit(vendor, debit(&reference("debit"), "12.5", None))
        .await;
    match refused {
        Err(BillingError::InsufficientFunds { shortfall }) => assert_eq!(shortfall, d("2.5")),
        other => panic!("expected InsufficientFunds, got {other:?}"),
    }
    assert_eq!(figures(&ledger, vendor).await, (d("10"), d("0"), d("10")));
    assert_eq!(ledger_rows(&ledger.pg, vendor).await, 1);

    // Money on hold is reserved: free-balance spending cannot take it.
    ledger
        .hold(
            vendor,
            HoldRequest {
                amount: d("8"),
                reference: reference("hold"),
                campaign_id: None,
            },
        )
        .await
        .unwrap();
    let refused = ledger
        .post_debit(vendor, debit(&reference("debit"), "3", None))
        .await;
    assert!(
        matches!(refused, Err(BillingError::InsufficientFunds { shortfall }) if shortfall == d("1")),
        "{refused:?}"
    );
    books(&ledger, vendor).await;
}

#[tokio::test]
async fn the_overdraft_limit_allows_debits_down_to_minus_the_limit_but_never_holds() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "10", "5").await;
    ledger
        .post_debit(vendor, debit(&reference("debit"), "14", None))
        .await
        .unwrap();
    ledger
        .post_debit(vendor, debit(&reference("debit"), "1", None))
        .await
        .unwrap();
    assert_eq!(figures(&ledger, vendor).await, (d("-5"), d("0"), d("-5")));
    let refused = ledger
        .post_debit(vendor, debit(&reference("debit"), "0.0001", None))
        .await;
    assert!(
        matches!(refused, Err(BillingError::InsufficientFunds { shortfall }) if shortfall == d("0.0001")),
        "{refused:?}"
    );
    let hold = ledger
        .hold(
            vendor,
            HoldRequest {
                amount: d("1"),
                reference: reference("hold"),
                campaign_id: None,
            },
        )
        .await;
    assert!(
        matches!(hold, Err(BillingError::InsufficientFunds { shortfall }) if shortfall == d("6")),
        "{hold:?}"
    );
    books(&ledger, vendor).await;
}

#[tokio::test]
async fn bad_amounts_and_unknown_wallets_or_holds_are_typed_errors() {
    let (_stores, ledger) = setup().await;
    let vendor = funded_wallet(&ledger, "10", "0").await;
    for amount in ["0", "-1", "1.00001"] {
        let result = ledger
            .post_credit(vendor, recharge(&reference("recharge"), amount))
            .await;
        assert!(
            matches!(result, Err(BillingError::InvalidAmount(_))),
            "{amount}: {result:?}"
        );
    }
    let nobody = VendorId::from_uuid(Uuid::new_v4());
    let result = ledger
        .post_credit(nobody, recharge(&reference("recharge"), "1"))
        .await;
    assert!(
        matches!(result, Err(BillingError::WalletNotFound)),
        "{result:?}"
    );
    let result = ledger
        .release(vendor, Uuid::new_v4(), &reference("release"))
        .await;
    assert!(
        matches!(result, Err(BillingError::HoldNotFound)),
        "{result:?}"
    );
    let result = ledger
        .post_debit(
            vendor,
            debit(&reference("debit"), "1", Some(Uuid::new_v4())),
        )
        .await;
    assert!(
        matches!(result, Err(BillingError::HoldNotFound)),
        "{result:?}"
    );

    // Another vendor's hold is not found either.
    let other = funded_wallet(&ledger, "10", "0").await;
    let theirs = ledger
        .hold(
            other,
            HoldRequest {
                amount: d("5"),
                reference: reference("hold"),
                campaign_id: None,
            },
        )
        .await
        .unwrap();
    let result = ledger
        .post_debit(vendor, debit(&reference("debit"), "1", Some(theirs.id)))
        .await;
    assert!(
        matches!(result, Err(BillingError::HoldNotFound)),
        "{result:?}"
    );
    let result = ledger
        .release(vendor, theirs.id, &reference("release"))
        .await;
    assert!(
        matches!(result, Err(BillingError::HoldNotFound)),
        "{result:?}"
    );
    assert_eq!(figures(&ledger, vendor).await, (d("10"), d("0"), d("10")));
    books(&ledger, other).await;
}
