//! The steps every posting shares: lock the wallet row, look up a reference already posted,
//! check funds, append one ledger row and move the wallet with it.

use kloyst_core::VendorId;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{reference_conflict_or, BillingError};
use crate::model::{Posted, TransactionKind, WalletView};

/// The wallet row under `FOR UPDATE`: the figures every posting of this transaction
/// starts from. Holding the lock serialises all postings to one wallet.
#[derive(Clone, Debug)]
pub(crate) struct LockedWallet {
    pub id: Uuid,
    pub vendor: VendorId,
    pub balance: Decimal,
    pub held: Decimal,
    pub overdraft_limit: Decimal,
}

impl LockedWallet {
    /// Refuses a state whose available (balance − held) is below −overdraft_limit: money on
    /// hold is reserved, so free-balance spending may not eat into it.
    pub fn ensure_covers(&self, balance: Decimal, held: Decimal) -> Result<(), BillingError> {
        let floor = -self.overdraft_limit;
        let available = balance - held;
        if available < floor {
            return Err(BillingError::InsufficientFunds {
                shortfall: floor - available,
            });
        }
        Ok(())
    }
}

pub(crate) async fn lock(
    conn: &mut PgConnection,
    vendor: VendorId,
) -> Result<LockedWallet, BillingError> {
    let row: Option<(Uuid, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT id, balance, held, overdraft_limit FROM wallets WHERE vendor_id = $1 FOR UPDATE",
    )
    .bind(vendor.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    let (id, balance, held, overdraft_limit) = row.ok_or(BillingError::WalletNotFound)?;
    Ok(LockedWallet {
        id,
        vendor,
        balance,
        held,
        overdraft_limit,
    })
}

/// Reads a wallet's figures without locking.
pub(crate) async fn view(
    conn: &mut PgConnection,
    vendor: VendorId,
) -> Result<WalletView, BillingError> {
    let row: Option<(Uuid, String, Decimal, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT id, currency, balance, held, available, overdraft_limit
         FROM wallets WHERE vendor_id = $1",
    )
    .bind(vendor.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    let (id, currency, balance, held, available, overdraft_limit) =
        row.ok_or(BillingError::WalletNotFound)?;
    Ok(WalletView {
        id,
        currency,
        balance,
        held,
        available,
        overdraft_limit,
    })
}

/// A ledger row found by its reference, with the wallet it belongs to.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    pub wallet_id: Uuid,
    pub posted: Posted,
}

type FoundRow = (
    i64,
    Uuid,
    String,
    Decimal,
    Decimal,
    Decimal,
    Decimal,
    String,
    Option<Uuid>,
);

const FOUND_COLUMNS: &str =
    "id, wallet_id, kind, amount, hold_delta, balance_after, held_after, reference, hold_id";

fn found(row: FoundRow) -> Result<Found, BillingError> {
    let (id, wallet_id, kind, amount, hold_delta, balance_after, held_after, reference, hold_id) =
        row;
    let kind = TransactionKind::parse(&kind).ok_or_else(|| {
        BillingError::Database(sqlx::Error::Decode(
            format!("unknown transaction kind {kind:?}").into(),
        ))
    })?;
    Ok(Found {
        wallet_id,
        posted: Posted {
            transaction_id: id,
            kind,
            amount,
            hold_delta,
            balance_after,
            held_after,
            reference,
            hold_id,
            replayed: true,
        },
    })
}

/// The row already posted under `reference`, if any. Read under the wallet lock: a posting
/// to this wallet with the same reference cannot commit in between.
pub(crate) async fn find_posted(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Option<Found>, BillingError> {
    let row: Option<FoundRow> = sqlx::query_as(&format!(
        "SELECT {FOUND_COLUMNS} FROM transactions WHERE reference = $1"
    ))
    .bind(reference)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(found).transpose()
}

/// Every row already posted under one of `references`.
pub(crate) async fn find_posted_many(
    conn: &mut PgConnection,
    references: &[&str],
) -> Result<Vec<Found>, BillingError> {
    let rows: Vec<FoundRow> = sqlx::query_as(&format!(
        "SELECT {FOUND_COLUMNS} FROM transactions WHERE reference = ANY($1)"
    ))
    .bind(references)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(found).collect()
}

/// The first result of a reference posted again, or a conflict when it was posted as
/// something else (`same` says whether the stored row is this request).
pub(crate) fn replay(
    found: Found,
    wallet: &LockedWallet,
    same: impl FnOnce(&Posted) -> bool,
) -> Result<Posted, BillingError> {
    if found.wallet_id == wallet.id && same(&found.posted) {
        Ok(found.posted)
    } else {
        Err(BillingError::ReferenceConflict(found.posted.reference))
    }
}

/// One ledger row to append.
pub(crate) struct NewRow<'a> {
    pub kind: TransactionKind,
    pub amount: Decimal,
    pub hold_delta: Decimal,
    pub reference: &'a str,
    pub hold_id: Option<Uuid>,
    pub campaign_id: Option<Uuid>,
    pub payment_order_id: Option<Uuid>,
    pub description: Option<&'a str>,
    pub created_by: Option<Uuid>,
}

const APPEND: &str = "WITH ins AS (
         INSERT INTO transactions (wallet_id, vendor_id, kind, amount, hold_delta,
             balance_after, held_after, reference, hold_id, campaign_id,
             payment_order_id, description, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id
     ), moved AS (
         UPDATE wallets SET balance = $6, held = $7 WHERE id = $1
     )
     SELECT id FROM ins";

const APPEND_HELD_ONLY: &str = "WITH ins AS (
         INSERT INTO transactions (wallet_id, vendor_id, kind, amount, hold_delta,
             balance_after, held_after, reference, hold_id, campaign_id,
             payment_order_id, description, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id
     ), moved AS (
         UPDATE wallets SET held = $7 WHERE id = $1
     )
     SELECT id FROM ins";

/// Appends `row` and moves the wallet by it, in one statement; updates `wallet` to match.
/// The caller has checked funds.
pub(crate) async fn append(
    conn: &mut PgConnection,
    wallet: &mut LockedWallet,
    row: NewRow<'_>,
) -> Result<Posted, BillingError> {
    let balance_after = wallet.balance + row.amount;
    let held_after = wallet.held + row.hold_delta;
    // A row that leaves the balance alone (a hold or its release) updates `held` only: that
    // is all the tenant role may update (a campaign launch or cancel posts holds under RLS),
    // and column privileges are checked on the SET list, whatever the values.
    let statement = if row.amount.is_zero() {
        APPEND_HELD_ONLY
    } else {
        APPEND
    };
    let id: i64 = sqlx::query_scalar(statement)
        .bind(wallet.id)
        .bind(wallet.vendor.as_uuid())
        .bind(row.kind.as_str())
        .bind(row.amount)
        .bind(row.hold_delta)
        .bind(balance_after)
        .bind(held_after)
        .bind(row.reference)
        .bind(row.hold_id)
        .bind(row.campaign_id)
        .bind(row.payment_order_id)
        .bind(row.description)
        .bind(row.created_by)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| reference_conflict_or(e, row.reference))?;
    wallet.balance = balance_after;
    wallet.held = held_after;
    Ok(Posted {
        transaction_id: id,
        kind: row.kind,
        amount: row.amount,
        hold_delta: row.hold_delta,
        balance_after,
        held_after,
        reference: row.reference.to_owned(),
        hold_id: row.hold_id,
        replayed: false,
    })
}
