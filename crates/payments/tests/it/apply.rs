//! Each event kind, redeliveries, out-of-order events and every reason not to credit.

use kloyst_payments::{ApplyError, PaymentOutcome};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_captured_payment_credits_once_however_often_it_is_delivered() {
    let stores = stores().await;
    let pg = &stores.pg;
    for deliveries in [1usize, 2, 5] {
        let vendor = new_vendor(pg, &format!("admin{deliveries}@acme.test")).await;
        let order = new_order(pg, vendor, 50_000).await;
        let payment = payment_id();
        let event = captured(&order, &payment);
        let mut outcomes = Vec::new();
        for _ in 0..deliveries {
            outcomes.push(apply(pg, &event).await.unwrap());
        }
        assert_eq!(
            outcomes[0],
            PaymentOutcome::Credited {
                vendor_id: vendor,
                payment_id: payment.clone(),
                amount: inr(50_000),
            }
        );
        for later in &outcomes[1..] {
            assert_eq!(
                later,
                &PaymentOutcome::AlreadyCredited {
                    payment_id: payment.clone()
                }
            );
        }
        let wallet = books(pg, vendor).await;
        assert_eq!(wallet.balance, inr(50_000), "{deliveries} deliveries");
        assert_eq!(recharge_rows(pg, vendor).await, 1);
        assert_eq!(
            order_status(pg, &order).await,
            ("paid".to_owned(), Some(payment.clone()))
        );
        let receipts = receipts(pg, vendor).await;
        assert_eq!(receipts.len(), 1, "one receipt per credit");
        assert_eq!(receipts[0]["to"], format!("admin{deliveries}@acme.test"));
        let text = receipts[0]["text"].as_str().unwrap();
        assert!(
            text.contains("INR 500.00") && text.contains(&payment),
            "{text}"
        );
    }
}

#[tokio::test]
async fn the_receipt_goes_to_the_billing_email_when_there_is_one() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;
    sqlx::query("UPDATE vendors SET billing_email = 'accounts@acme.test' WHERE id = $1")
        .bind(vendor.as_uuid())
        .execute(pg)
        .await
        .unwrap();
    let order = new_order(pg, vendor, 10_000).await;
    apply(pg, &captured(&order, &payment_id())).await.unwrap();
    assert_eq!(receipts(pg, vendor).await[0]["to"], "accounts@acme.test");
}

#[tokio::test]
async fn a_wrong_amount_or_currency_is_flagged_not_credited() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;

    let order = new_order(pg, vendor, 50_000).await;
    let short = payment_event(
        "payment.captured",
        &order,
        &payment_id(),
        100,
        json!({ "vendor_id": vendor.to_string() }),
    );
    let outcome = apply(pg, &short).await.unwrap();
    assert!(
        matches!(&outcome, PaymentOutcome::Flagged { reason, .. } if reason.contains("amount")),
        "{outcome:?}"
    );
    assert_eq!(order_status(pg, &order).await.0, "mismatch");

    let order = new_order(pg, vendor, 50_000).await;
    let mut dollars = captured(&order, &payment_id());
    dollars["payload"]["payment"]["entity"]["currency"] = json!("USD");
    let outcome = apply(pg, &dollars).await.unwrap();
    assert!(
        matches!(&outcome, PaymentOutcome::Flagged { reason, .. } if reason.contains("currency")),
        "{outcome:?}"
    );

    let wallet = books(pg, vendor).await;
    assert_eq!(wallet.balance, inr(0));
    assert_eq!(recharge_rows(pg, vendor).await, 0);
    assert!(receipts(pg, vendor).await.is_empty());
    let flagged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE vendor_id = $1 AND action = 'wallet.recharge_flagged'",
    )
    .bind(vendor.as_uuid())
    .fetch_one(pg)
    .await
    .unwrap();
    assert_eq!(flagged, 2);
}

#[tokio::test]
async fn a_payment_naming_another_vendor_credits_nobody() {
    let stores = stores().await;
    let pg = &stores.pg;
    let a = new_vendor(pg, "a@acme.test").await;
    let b = new_vendor(pg, "b@acme.test").await;
    let order_of_b = new_order(pg, b, 50_000).await;
    // A payment whose notes say vendor A, against vendor B's order.
    let event = payment_event(
        "payment.captured",
        &order_of_b,
        &payment_id(),
        50_000,
        json!({ "vendor_id": a.to_string() }),
    );
    let outcome = apply(pg, &event).await.unwrap();
    assert!(
        matches!(outcome, PaymentOutcome::Flagged { .. }),
        "{outcome:?}"
    );
    assert_eq!(books(pg, a).await.balance, inr(0));
    assert_eq!(books(pg, b).await.balance, inr(0));
    assert_eq!(order_status(pg, &order_of_b).await.0, "mismatch");
}

#[tokio::test]
async fn an_order_that_is_not_ours_is_refused_for_an_operator() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;
    let mut order = new_order(pg, vendor, 50_000).await;
    order.razorpay_order_id = "order_NotOursAtAll1".to_owned();
    let outcome = apply(pg, &captured(&order, &payment_id())).await;
    assert!(
        matches!(&outcome, Err(ApplyError::Permanent(reason)) if reason.contains("not ours")),
        "{outcome:?}"
    );
    assert_eq!(books(pg, vendor).await.balance, inr(0));
}

#[tokio::test]
async fn a_second_payment_for_a_paid_order_is_flagged_and_the_order_stays_paid() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;
    let order = new_order(pg, vendor, 20_000).await;
    let first = payment_id();
    apply(pg, &captured(&order, &first)).await.unwrap();
    let outcome = apply(pg, &captured(&order, &payment_id())).await.unwrap();
    assert!(
        matches!(&outcome, PaymentOutcome::Flagged { reason, .. } if reason.contains(&first)),
        "{outcome:?}"
    );
    assert_eq!(
        order_status(pg, &order).await,
        ("paid".to_owned(), Some(first))
    );
    assert_eq!(books(pg, vendor).await.balance, inr(20_000));
}

#[tokio::test]
async fn failed_before_captured_ends_paid_and_failed_after_captured_changes_nothing() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;

    let order = new_order(pg, vendor, 30_000).await;
    let payment = payment_id();
    let failed = payment_event("payment.failed", &order, &payment, 30_000, json!([]));
    assert_eq!(
        apply(pg, &failed).await.unwrap(),
        PaymentOutcome::MarkedFailed {
            payment_id: payment.clone()
        }
    );
    assert_eq!(order_status(pg, &order).await.0, "failed");
    apply(pg, &captured(&order, &payment)).await.unwrap();
    assert_eq!(
        order_status(pg, &order).await,
        ("paid".to_owned(), Some(payment.clone()))
    );
    // And the failure delivered again afterwards is recorded, not applied.
    assert_eq!(
        apply(pg, &failed).await.unwrap(),
        PaymentOutcome::FailureIgnored {
            payment_id: payment.clone()
        }
    );
    assert_eq!(order_status(pg, &order).await.0, "paid");
    assert_eq!(books(pg, vendor).await.balance, inr(30_000));

    let failure: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT failure_code, failure_reason FROM payment_orders WHERE id = $1")
            .bind(order.id)
            .fetch_one(pg)
            .await
            .unwrap();
    assert_eq!(failure.0.as_deref(), Some("BAD_REQUEST_ERROR"));
}

#[tokio::test]
async fn a_refund_posts_once_and_marks_the_order() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;
    let order = new_order(pg, vendor, 50_000).await;
    let payment = payment_id();

    // Before its capture is applied, a refund waits (Razorpay does not order events).
    let early = apply(pg, &refund_event("rfnd_Early00000001", &payment, 10_000)).await;
    assert!(matches!(early, Err(ApplyError::Retry(_))), "{early:?}");

    apply(pg, &captured(&order, &payment)).await.unwrap();
    let refund = refund_event("rfnd_Partial000001", &payment, 20_000);
    assert_eq!(
        apply(pg, &refund).await.unwrap(),
        PaymentOutcome::Refunded {
            refund_id: "rfnd_Partial000001".to_owned(),
            amount: inr(20_000)
        }
    );
    assert_eq!(
        apply(pg, &refund).await.unwrap(),
        PaymentOutcome::AlreadyRefunded {
            refund_id: "rfnd_Partial000001".to_owned()
        }
    );
    assert_eq!(order_status(pg, &order).await.0, "partially_refunded");
    assert_eq!(books(pg, vendor).await.balance, inr(30_000));

    // More than what is left of the payment: refused for an operator.
    let too_much = apply(pg, &refund_event("rfnd_TooMuch000001", &payment, 40_000)).await;
    assert!(
        matches!(too_much, Err(ApplyError::Permanent(_))),
        "{too_much:?}"
    );

    apply(pg, &refund_event("rfnd_Rest0000000001", &payment, 30_000))
        .await
        .unwrap();
    assert_eq!(order_status(pg, &order).await.0, "refunded");
    let wallet = books(pg, vendor).await;
    assert_eq!(wallet.balance, inr(0));
    let refunds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM transactions WHERE vendor_id = $1 AND kind = 'REFUND'",
    )
    .bind(vendor.as_uuid())
    .fetch_one(pg)
    .await
    .unwrap();
    assert_eq!(refunds, 2);
}

#[tokio::test]
async fn a_refund_the_wallet_already_spent_is_refused_not_overdrawn() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;
    let order = new_order(pg, vendor, 10_000).await;
    let payment = payment_id();
    apply(pg, &captured(&order, &payment)).await.unwrap();
    kloyst_billing::Ledger::new(pg.clone())
        .post_debit(
            vendor,
            kloyst_billing::Debit {
                reference: "debit:wamid.spent".to_owned(),
                amount: inr(9_000),
                hold_id: None,
                campaign_id: None,
                wa_message_id: Some("wamid.spent".to_owned()),
                metadata: json!({}),
            },
        )
        .await
        .unwrap();
    let outcome = apply(pg, &refund_event("rfnd_Spent00000001", &payment, 10_000)).await;
    assert!(
        matches!(&outcome, Err(ApplyError::Permanent(reason)) if reason.contains("insufficient")),
        "{outcome:?}"
    );
    assert_eq!(books(pg, vendor).await.balance, inr(1_000));
}

#[tokio::test]
async fn a_refund_of_a_flagged_payment_moves_no_wallet_money() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;
    let order = new_order(pg, vendor, 50_000).await;
    let payment = payment_id();
    let wrong = payment_event(
        "payment.captured",
        &order,
        &payment,
        40_000,
        json!({ "vendor_id": vendor.to_string() }),
    );
    apply(pg, &wrong).await.unwrap();
    let outcome = apply(pg, &refund_event("rfnd_Flagged000001", &payment, 40_000))
        .await
        .unwrap();
    assert!(
        matches!(outcome, PaymentOutcome::RefundOfUncredited { .. }),
        "{outcome:?}"
    );
    assert_eq!(books(pg, vendor).await.balance, inr(0));
}

#[tokio::test]
async fn events_we_do_not_act_on_are_acknowledged() {
    let stores = stores().await;
    let pg = &stores.pg;
    let vendor = new_vendor(pg, "admin@acme.test").await;
    let order = new_order(pg, vendor, 50_000).await;
    let mut authorized = captured(&order, &payment_id());
    authorized["event"] = json!("payment.authorized");
    assert_eq!(
        apply(pg, &authorized).await.unwrap(),
        PaymentOutcome::Ignored {
            event: "payment.authorized".to_owned()
        }
    );
    assert_eq!(books(pg, vendor).await.balance, inr(0));
}
