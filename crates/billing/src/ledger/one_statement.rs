//! The hot-wallet fast path: a batch of debits without holds posted by ONE autocommit
//! statement — lock the wallet row, check references and funds, insert every row, move the
//! wallet, commit. The row lock is then held for one statement and its commit instead of
//! four round trips, which is what bounds a hot wallet (postings to it are serialised).
//!
//! The statement's snapshot is taken before it waits for the lock, so a reference posted
//! by the previous lock holder may be invisible to its check; the unique index still
//! refuses it, and any refusal (a reference seen, a unique violation, funds short, no
//! wallet, a reference twice in the batch) falls back to [`super::post_debits_in`] in a
//! transaction, which gives the exact answer. Balances are read from the locked row (the
//! latest version), so they are never stale.

use std::collections::HashSet;

use kloyst_core::VendorId;
use rust_decimal::Decimal;
use sqlx::{Connection, PgConnection};

use super::batch::validate;
use super::post_debits_in;
use crate::error::BillingError;
use crate::model::{Debit, Posted, TransactionKind};

/// Posts `debits` on `conn` (not inside a transaction): the one-statement path when it
/// applies, else a transaction around [`post_debits_in`]. Same results as the latter.
pub(crate) async fn post_debits_on(
    conn: &mut PgConnection,
    vendor: VendorId,
    debits: &[Debit],
) -> Result<Vec<Posted>, BillingError> {
    if let Some(posted) = try_one_statement(conn, vendor, debits).await? {
        return Ok(posted);
    }
    let mut tx = conn.begin().await?;
    let posted = post_debits_in(&mut tx, vendor, debits).await?;
    tx.commit().await?;
    Ok(posted)
}

/// The new rows' ids (none if nothing was written), the locked balance and held.
type Outcome = (Option<Vec<i64>>, Decimal, Decimal);

/// `None` when the batch needs the transaction path.
async fn try_one_statement(
    conn: &mut PgConnection,
    vendor: VendorId,
    debits: &[Debit],
) -> Result<Option<Vec<Posted>>, BillingError> {
    let mut references = HashSet::with_capacity(debits.len());
    let eligible = !debits.is_empty()
        && debits
            .iter()
            .all(|d| d.hold_id.is_none() && references.insert(d.reference.as_str()));
    if !eligible {
        return Ok(None);
    }
    let amounts = debits.iter().map(validate).collect::<Result<Vec<_>, _>>()?;
    let total: Decimal = amounts.iter().sum();
    let reference: Vec<&str> = debits.iter().map(|d| d.reference.as_str()).collect();
    let campaign_id: Vec<_> = debits.iter().map(|d| d.campaign_id).collect();
    let wa_message_id: Vec<_> = debits.iter().map(|d| d.wa_message_id.as_deref()).collect();
    let metadata: Vec<serde_json::Value> = debits
        .iter()
        .map(|d| match &d.metadata {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            other => other.clone(),
        })
        .collect();
    // Running sums from the first debit: balance_after of row i = locked balance + cum[i].
    let cumulative: Vec<Decimal> = amounts
        .iter()
        .scan(Decimal::ZERO, |sum, amount| {
            *sum += amount;
            Some(*sum)
        })
        .collect();
    let result: Result<Option<Outcome>, sqlx::Error> = sqlx::query_as(
        "WITH w AS MATERIALIZED (
             SELECT id, balance, held, overdraft_limit FROM wallets
             WHERE vendor_id = $1 FOR UPDATE
         ), verdict AS MATERIALIZED (
             SELECT w.id AS wallet_id, w.balance, w.held,
                    NOT EXISTS (SELECT 1 FROM transactions WHERE reference = ANY($3::text[]))
                        AND w.balance + $7 - w.held >= -w.overdraft_limit AS go
             FROM w
         ), ins AS (
             INSERT INTO transactions (wallet_id, vendor_id, kind, amount, hold_delta,
                 balance_after, held_after, reference, campaign_id, wa_message_id, metadata)
             SELECT v.wallet_id, $1, 'DEBIT_MESSAGE', r.amount, 0, v.balance + r.cumulative,
                    v.held, r.reference, r.campaign_id, r.wa_message_id, r.metadata
             FROM verdict v,
                  unnest($2::numeric[], $3::text[], $4::uuid[], $5::text[], $6::jsonb[],
                         $8::numeric[])
                      WITH ORDINALITY AS r(amount, reference, campaign_id, wa_message_id,
                                           metadata, cumulative, ord)
             WHERE v.go ORDER BY r.ord
             RETURNING id
         ), moved AS (
             UPDATE wallets SET balance = v.balance + $7
             FROM verdict v WHERE wallets.id = v.wallet_id AND v.go
         )
         -- rows are inserted in order, so their ids ascend with it
         SELECT (SELECT array_agg(id ORDER BY id) FROM ins), v.balance, v.held
         FROM verdict v",
    )
    .bind(vendor.as_uuid())
    .bind(&amounts)
    .bind(&reference)
    .bind(&campaign_id)
    .bind(&wa_message_id)
    .bind(&metadata)
    .bind(total)
    .bind(&cumulative)
    .fetch_optional(&mut *conn)
    .await;
    let (ids, balance, held) = match result {
        Ok(Some(outcome)) => outcome,
        // No wallet: the transaction path says so.
        Ok(None) => return Ok(None),
        Err(error) if is_unique_violation(&error) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let Some(ids) = ids else {
        return Ok(None);
    };
    if ids.len() != debits.len() {
        return Err(BillingError::Database(sqlx::Error::Protocol(
            "the debit statement returned fewer rows than sent".to_owned(),
        )));
    }
    Ok(Some(
        debits
            .iter()
            .zip(amounts)
            .zip(ids.into_iter().zip(cumulative))
            .map(|((debit, amount), (id, cumulative))| Posted {
                transaction_id: id,
                kind: TransactionKind::DebitMessage,
                amount,
                hold_delta: Decimal::ZERO,
                balance_after: balance + cumulative,
                held_after: held,
                reference: debit.reference.clone(),
                hold_id: None,
                replayed: false,
            })
            .collect(),
    ))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}
