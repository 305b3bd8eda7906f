//! Holds: reserve money (HOLD), and give back what a hold still has (HOLD_RELEASE).
//! Captures happen in the debit batch ([`super::batch`]).

use kloyst_core::VendorId;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::wallet::{append, find_posted, lock, replay, NewRow};
use crate::error::{reference_conflict_or, BillingError};
use crate::model::{
    ledger_amount, ledger_reference, HoldRequest, HoldStatus, HoldView, Posted, TransactionKind,
};

/// Places a hold inside the caller's transaction. Holds never use the overdraft: available
/// (balance − held) must cover the amount, else `InsufficientFunds`. The wallet row lock
/// makes two concurrent holds on the same money see each other.
pub async fn hold_in(
    conn: &mut PgConnection,
    vendor: VendorId,
    request: HoldRequest,
) -> Result<HoldView, BillingError> {
    ledger_reference(&request.reference)?;
    let amount = ledger_amount(request.amount)?;
    let mut wallet = lock(conn, vendor).await?;
    if let Some(found) = find_posted(conn, &request.reference).await? {
        let posted = replay(found, &wallet, |p| {
            p.kind == TransactionKind::Hold && p.hold_delta == amount
        })?;
        let hold_id = posted
            .hold_id
            .ok_or_else(|| BillingError::ReferenceConflict(request.reference.clone()))?;
        return load(conn, hold_id, posted).await;
    }
    if let Some(campaign) = request.campaign_id {
        // One hold per campaign: a second one under another reference is a conflict, found
        // here so that the caller's transaction is not aborted by the unique index.
        let taken: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM wallet_holds WHERE campaign_id = $1")
                .bind(campaign)
                .fetch_optional(&mut *conn)
                .await?;
        if taken.is_some() {
            return Err(BillingError::ReferenceConflict(request.reference));
        }
    }
    let available = wallet.balance - wallet.held;
    if amount > available {
        return Err(BillingError::InsufficientFunds {
            shortfall: amount - available,
        });
    }
    let hold_id: Uuid = sqlx::query_scalar(
        "INSERT INTO wallet_holds (wallet_id, vendor_id, campaign_id, reference, amount)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(wallet.id)
    .bind(vendor.as_uuid())
    .bind(request.campaign_id)
    .bind(&request.reference)
    .bind(amount)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| reference_conflict_or(e, &request.reference))?;
    let posted = append(
        conn,
        &mut wallet,
        NewRow {
            kind: TransactionKind::Hold,
            amount: Decimal::ZERO,
            hold_delta: amount,
            reference: &request.reference,
            hold_id: Some(hold_id),
            campaign_id: request.campaign_id,
            payment_order_id: None,
            description: None,
            created_by: None,
        },
    )
    .await?;
    load(conn, hold_id, posted).await
}

/// Releases what `hold_id` still has and closes it, inside the caller's transaction.
/// A hold already closed (released before, or fully captured) is `HoldClosed`; the same
/// `reference` again returns the first release.
pub async fn release_in(
    conn: &mut PgConnection,
    vendor: VendorId,
    hold_id: Uuid,
    reference: &str,
) -> Result<Posted, BillingError> {
    ledger_reference(reference)?;
    let mut wallet = lock(conn, vendor).await?;
    if let Some(found) = find_posted(conn, reference).await? {
        return replay(found, &wallet, |p| {
            p.kind == TransactionKind::HoldRelease && p.hold_id == Some(hold_id)
        });
    }
    let hold: Option<(Decimal, String)> = sqlx::query_as(
        "SELECT remaining, status FROM wallet_holds WHERE id = $1 AND wallet_id = $2",
    )
    .bind(hold_id)
    .bind(wallet.id)
    .fetch_optional(&mut *conn)
    .await?;
    let (remaining, status) = hold.ok_or(BillingError::HoldNotFound)?;
    if status != "ACTIVE" || remaining <= Decimal::ZERO {
        return Err(BillingError::HoldClosed);
    }
    sqlx::query(
        "UPDATE wallet_holds SET released = released + remaining, status = 'CLOSED',
             closed_at = now()
         WHERE id = $1",
    )
    .bind(hold_id)
    .execute(&mut *conn)
    .await?;
    append(
        conn,
        &mut wallet,
        NewRow {
            kind: TransactionKind::HoldRelease,
            amount: Decimal::ZERO,
            hold_delta: -remaining,
            reference,
            hold_id: Some(hold_id),
            campaign_id: None,
            payment_order_id: None,
            description: None,
            created_by: None,
        },
    )
    .await
}

/// A hold's current figures with its HOLD row.
async fn load(
    conn: &mut PgConnection,
    hold_id: Uuid,
    posted: Posted,
) -> Result<HoldView, BillingError> {
    type Row = (
        Uuid,
        Option<Uuid>,
        String,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        String,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, campaign_id, reference, amount, captured, released, remaining, status
         FROM wallet_holds WHERE id = $1",
    )
    .bind(hold_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (id, campaign_id, reference, amount, captured, released, remaining, status) =
        row.ok_or(BillingError::HoldNotFound)?;
    Ok(HoldView {
        id,
        campaign_id,
        reference,
        amount,
        captured,
        released,
        remaining,
        status: if status == "ACTIVE" {
            HoldStatus::Active
        } else {
            HoldStatus::Closed
        },
        posted,
    })
}
