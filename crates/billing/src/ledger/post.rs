//! Credits (recharges, adjustments) and refunds: one row each.

use kloyst_core::VendorId;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::wallet::{append, find_posted, lock, replay, NewRow};
use crate::error::BillingError;
use crate::model::{
    ledger_amount, ledger_reference, Credit, CreditKind, Posted, Refund, TransactionKind,
};

/// Posts a credit inside the caller's transaction. A negative amount is allowed for
/// [`CreditKind::Adjustment`] only (see there).
pub async fn post_credit_in(
    conn: &mut PgConnection,
    vendor: VendorId,
    credit: Credit,
) -> Result<Posted, BillingError> {
    ledger_reference(&credit.reference)?;
    let (kind, amount) = match credit.kind {
        CreditKind::Recharge => (
            TransactionKind::CreditRecharge,
            ledger_amount(credit.amount)?,
        ),
        CreditKind::Adjustment if credit.amount < Decimal::ZERO => {
            (TransactionKind::Adjustment, -ledger_amount(-credit.amount)?)
        }
        CreditKind::Adjustment => (TransactionKind::Adjustment, ledger_amount(credit.amount)?),
    };
    let mut wallet = lock(conn, vendor).await?;
    if let Some(found) = find_posted(conn, &credit.reference).await? {
        return replay(found, &wallet, |p| p.kind == kind && p.amount == amount);
    }
    if amount < Decimal::ZERO {
        wallet.ensure_covers(wallet.balance + amount, wallet.held)?;
    }
    append(
        conn,
        &mut wallet,
        NewRow {
            kind,
            amount,
            hold_delta: Decimal::ZERO,
            reference: &credit.reference,
            hold_id: None,
            campaign_id: None,
            payment_order_id: credit.payment_order_id,
            description: credit.description.as_deref(),
            created_by: credit.created_by,
        },
    )
    .await
}

/// Posts a refund (stored negative) inside the caller's transaction. Like any spending it
/// may not take available below −overdraft_limit (the wallet's CHECK would refuse it too).
pub async fn post_refund_in(
    conn: &mut PgConnection,
    vendor: VendorId,
    refund: Refund,
) -> Result<Posted, BillingError> {
    ledger_reference(&refund.reference)?;
    let amount = -ledger_amount(refund.amount)?;
    let mut wallet = lock(conn, vendor).await?;
    if let Some(found) = find_posted(conn, &refund.reference).await? {
        return replay(found, &wallet, |p| {
            p.kind == TransactionKind::Refund && p.amount == amount
        });
    }
    wallet.ensure_covers(wallet.balance + amount, wallet.held)?;
    append(
        conn,
        &mut wallet,
        NewRow {
            kind: TransactionKind::Refund,
            amount,
            hold_delta: Decimal::ZERO,
            reference: &refund.reference,
            hold_id: None,
            campaign_id: None,
            payment_order_id: refund.payment_order_id,
            description: refund.description.as_deref(),
            created_by: None,
        },
    )
    .await
}
