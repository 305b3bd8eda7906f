//! Postings. Each operation comes in two forms: `*_in(conn, …)` runs inside the caller's
//! transaction (campaign launch, the webhook processor), and a method on [`Ledger`] opens
//! and commits its own. Both run on the owner connection (no tenant role): credits and
//! debits are system work that the tenant role may not do (see the RLS policies).
//!
//! Every posting locks the wallet row first (`FOR UPDATE`), so postings to one wallet are
//! serialised and a reference is looked up under the lock: posting it again returns the
//! first result with `replayed: true`. A reference is global (unique in `transactions`);
//! the same reference used for another kind, amount, hold or wallet is `ReferenceConflict`.
//! In a caller's transaction, a refusal found before writing (funds, conflict, hold) leaves
//! the transaction usable; a database error aborts it.

mod batch;
mod holds;
mod one_statement;
mod post;
mod wallet;

pub use batch::post_debits_in;
pub(crate) use batch::validate as validate_debit;
pub use holds::{hold_in, release_in};
pub(crate) use one_statement::post_debits_on;
pub use post::{post_credit_in, post_refund_in};

use kloyst_core::VendorId;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::BillingError;
use crate::model::{Credit, Debit, HoldRequest, HoldView, Posted, Refund, WalletView};

/// Reads a wallet's figures (balance, held, available, overdraft limit).
pub async fn wallet_in(
    conn: &mut PgConnection,
    vendor: VendorId,
) -> Result<WalletView, BillingError> {
    wallet::view(conn, vendor).await
}

/// The ledger over a pool: each call is its own transaction.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub pg: PgPool,
}

impl Ledger {
    pub fn new(pg: PgPool) -> Self {
        Self { pg }
    }

    pub async fn post_credit(
        &self,
        vendor: VendorId,
        credit: Credit,
    ) -> Result<Posted, BillingError> {
        let mut tx = self.pg.begin().await?;
        let posted = post_credit_in(&mut tx, vendor, credit).await?;
        tx.commit().await?;
        Ok(posted)
    }

    pub async fn post_refund(
        &self,
        vendor: VendorId,
        refund: Refund,
    ) -> Result<Posted, BillingError> {
        let mut tx = self.pg.begin().await?;
        let posted = post_refund_in(&mut tx, vendor, refund).await?;
        tx.commit().await?;
        Ok(posted)
    }

    pub async fn hold(
        &self,
        vendor: VendorId,
        request: HoldRequest,
    ) -> Result<HoldView, BillingError> {
        let mut tx = self.pg.begin().await?;
        let view = hold_in(&mut tx, vendor, request).await?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn release(
        &self,
        vendor: VendorId,
        hold_id: Uuid,
        reference: &str,
    ) -> Result<Posted, BillingError> {
        let mut tx = self.pg.begin().await?;
        let posted = release_in(&mut tx, vendor, hold_id, reference).await?;
        tx.commit().await?;
        Ok(posted)
    }

    /// Posts a batch of debits: a batch without holds goes through one autocommit
    /// statement (see `one_statement`), anything else through [`post_debits_in`].
    pub async fn post_debits(
        &self,
        vendor: VendorId,
        debits: &[Debit],
    ) -> Result<Vec<Posted>, BillingError> {
        let mut conn = self.pg.acquire().await?;
        post_debits_on(&mut conn, vendor, debits).await
    }

    /// One debit: [`Ledger::post_debits`] with a batch of one.
    pub async fn post_debit(&self, vendor: VendorId, debit: Debit) -> Result<Posted, BillingError> {
        let mut posted = self
            .post_debits(vendor, std::slice::from_ref(&debit))
            .await?;
        posted.pop().ok_or_else(|| {
            BillingError::Database(sqlx::Error::Protocol("no result for a debit".to_owned()))
        })
    }

    pub async fn wallet(&self, vendor: VendorId) -> Result<WalletView, BillingError> {
        let mut conn = self.pg.acquire().await?;
        wallet_in(&mut conn, vendor).await
    }
}
