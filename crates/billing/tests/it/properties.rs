//! Property test: random sequences of credits, holds, debits (with and without a hold),
//! releases and refunds — some of them as concurrent bursts — leave the books right:
//! no invariant violated, balance = Σ of the successful postings, held = Σ of their
//! hold deltas.

use std::sync::Arc;

use kloyst_billing::{BillingError, HoldRequest, Ledger, Posted, Refund};
use kloyst_core::VendorId;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::helpers::*;

#[derive(Clone, Debug)]
enum Op {
    Credit(Decimal),
    Hold(Decimal),
    /// `hold`: index into the holds placed so far (None = free balance).
    Debit(Decimal, Option<usize>),
    Release(usize),
    Refund(Decimal),
    /// Debits posted concurrently, each on its own.
    Burst(Vec<(Decimal, Option<usize>)>),
    /// One batch, with a reference repeated.
    Batch(Vec<(Decimal, Option<usize>)>),
}

fn amount() -> impl Strategy<Value = Decimal> {
    (1i64..50_000, 0u32..=4).prop_map(|(units, scale)| Decimal::new(units, scale))
}

fn debit_spec() -> impl Strategy<Value = (Decimal, Option<usize>)> {
    (amount(), proptest::option::of(0usize..4))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => amount().prop_map(Op::Credit),
        2 => amount().prop_map(Op::Hold),
        4 => debit_spec().prop_map(|(a, h)| Op::Debit(a, h)),
        1 => (0usize..4).prop_map(Op::Release),
        1 => amount().prop_map(Op::Refund),
        1 => proptest::collection::vec(debit_spec(), 2..6).prop_map(Op::Burst),
        1 => proptest::collection::vec(debit_spec(), 2..6).prop_map(Op::Batch),
    ]
}

/// Σ amount and Σ hold_delta of what was newly posted.
#[derive(Default)]
struct Expected {
    balance: Decimal,
    held: Decimal,
}

impl Expected {
    fn record(&mut self, result: Result<Posted, BillingError>) {
        match result {
            Ok(posted) if !posted.replayed => {
                self.balance += posted.amount;
                self.held += posted.hold_delta;
            }
            Ok(_) => {}
            // Refusals are expected (funds, closed holds); anything else is a bug.
            Err(BillingError::InsufficientFunds { .. } | BillingError::HoldClosed) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
}

async fn apply(ledger: &Ledger, vendor: VendorId, ops: Vec<Op>) {
    let mut holds: Vec<Uuid> = Vec::new();
    let mut expected = Expected::default();
    let pick = |holds: &[Uuid], index: Option<usize>| {
        index.and_then(|i| (!holds.is_empty()).then(|| holds[i % holds.len()]))
    };
    for op in ops {
        match op {
            Op::Credit(amount) => {
                let credit = recharge(&reference("recharge"), &amount.to_string());
                expected.record(ledger.post_credit(vendor, credit).await);
            }
            Op::Hold(amount) => {
                let request = HoldRequest {
                    amount,
                    reference: reference("hold"),
                    campaign_id: None,
                };
                match ledger.hold(vendor, request).await {
                    Ok(view) => {
                        holds.push(view.id);
                        expected.record(Ok(view.posted));
                    }
                    Err(error) => expected.record(Err(error)),
                }
            }
            Op::Debit(amount, hold) => {
                let debit = debit(&reference("debit"), &amount.to_string(), pick(&holds, hold));
                expected.record(ledger.post_debit(vendor, debit).await);
            }
            Op::Release(index) => {
                if let Some(hold) = pick(&holds, Some(index)) {
                    expected.record(ledger.release(vendor, hold, &reference("release")).await);
                }
            }
            Op::Refund(amount) => {
                let refund = Refund {
                    amount,
                    reference: reference("refund"),
                    payment_order_id: None,
                    description: None,
                };
                expected.record(ledger.post_refund(vendor, refund).await);
            }
            Op::Burst(specs) => {
                let tasks: Vec<_> = specs
                    .into_iter()
                    .map(|(amount, hold)| {
                        let ledger = ledger.clone();
                        let debit =
                            debit(&reference("debit"), &amount.to_string(), pick(&holds, hold));
                        tokio::spawn(async move { ledger.post_debit(vendor, debit).await })
                    })
                    .collect();
                for task in tasks {
                    expected.record(task.await.expect("join"));
                }
            }
            Op::Batch(specs) => {
                let mut debits: Vec<_> = specs
                    .into_iter()
                    .map(|(amount, hold)| {
                        debit(&reference("debit"), &amount.to_string(), pick(&holds, hold))
                    })
                    .collect();
                debits.push(debits[0].clone());
                match ledger.post_debits(vendor, &debits).await {
                    Ok(posted) => posted.into_iter().for_each(|p| expected.record(Ok(p))),
                    Err(error) => expected.record(Err(error)),
                }
            }
        }
    }
    let (balance, held, _) = figures(ledger, vendor).await;
    assert_eq!(balance, expected.balance);
    assert_eq!(held, expected.held);
}

#[test]
fn random_postings_keep_every_invariant() {
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
    );
    let (stores, ledger) = runtime.block_on(setup());
    let config = ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..16), overdraft in prop_oneof![Just(0i64), 1i64..100])| {
        runtime.block_on(async {
            let vendor = new_wallet(&ledger.pg, Decimal::from(overdraft)).await;
            apply(&ledger, vendor, ops).await;
        });
    });
    drop(stores);
}
