//! The batch path for hot wallets: many debits to one wallet in one transaction — one
//! lock, one look-up of references, one statement that inserts every ledger row (unnest),
//! moves the wallet and captures from holds.

use std::collections::HashMap;

use kloyst_core::VendorId;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::wallet::{find_posted_many, lock, replay, Found, LockedWallet};
use crate::error::{reference_conflict_or, BillingError};
use crate::model::{ledger_amount, ledger_reference, Debit, Posted, TransactionKind};

/// Checks a debit before it is queued or posted; returns its stored (negative) amount.
pub(crate) fn validate(debit: &Debit) -> Result<Decimal, BillingError> {
    ledger_reference(&debit.reference)?;
    if !(debit.metadata.is_object() || debit.metadata.is_null()) {
        return Err(BillingError::InvalidAmount(
            "debit metadata must be a JSON object".to_owned(),
        ));
    }
    Ok(-ledger_amount(debit.amount)?)
}

/// Posts `debits` to `vendor`'s wallet inside the caller's transaction; one result per
/// debit, in order. A reference posted before, or repeated within the batch, is answered
/// with the first result (`replayed`). Debits apply in order; a capture takes
/// min(amount, hold remaining) from its hold (a closed hold gives nothing) and the rest
/// comes from free balance. Any refused debit (funds, hold, conflict) fails the whole batch
/// with nothing posted.
pub async fn post_debits_in(
    conn: &mut PgConnection,
    vendor: VendorId,
    debits: &[Debit],
) -> Result<Vec<Posted>, BillingError> {
    let amounts = debits.iter().map(validate).collect::<Result<Vec<_>, _>>()?;
    if debits.is_empty() {
        return Ok(Vec::new());
    }
    let wallet = lock(conn, vendor).await?;
    let holds = load_holds(conn, &wallet, debits).await?;
    // Optimistic: replays are rare, so the write itself checks that none of the references
    // was posted before (it writes nothing if one was); only then are they looked up.
    let known = HashMap::new();
    let mut planned = plan(&wallet, debits, &amounts, &known, holds.clone())?;
    let mut ids = write(conn, &planned).await?;
    if ids.is_none() {
        let references: Vec<&str> = debits.iter().map(|d| d.reference.as_str()).collect();
        let known: HashMap<String, Found> = find_posted_many(conn, &references)
            .await?
            .into_iter()
            .map(|found| (found.posted.reference.clone(), found))
            .collect();
        planned = plan(&wallet, debits, &amounts, &known, holds)?;
        ids = write(conn, &planned).await?;
    }
    let ids = ids.ok_or_else(|| {
        BillingError::Database(sqlx::Error::Protocol(
            "a debit reference appeared under the wallet lock".to_owned(),
        ))
    })?;
    let Planned {
        mut rows, slots, ..
    } = planned;
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Done(posted) => Ok(posted),
            Slot::New(index) => {
                let first_use = !std::mem::replace(&mut rows.answered[index], true);
                let id = ids.get(index).copied().ok_or_else(|| {
                    BillingError::Database(sqlx::Error::Protocol(
                        "batch insert returned fewer rows than sent".to_owned(),
                    ))
                })?;
                Ok(Posted {
                    transaction_id: id,
                    kind: TransactionKind::DebitMessage,
                    amount: rows.amount[index],
                    hold_delta: rows.hold_delta[index],
                    balance_after: rows.balance_after[index],
                    held_after: rows.held_after[index],
                    reference: rows.reference[index].clone(),
                    hold_id: rows.hold_id[index],
                    replayed: !first_use,
                })
            }
        })
        .collect()
}

/// The batch worked out against the locked wallet: new rows, one slot per debit, and the
/// wallet as it will be.
struct Planned {
    wallet: LockedWallet,
    rows: Plan,
    slots: Vec<Slot>,
}

/// Applies the debits in order to a copy of the wallet; `known` are references posted
/// before (answered as replays), `holds` the remaining of each named hold.
fn plan(
    wallet: &LockedWallet,
    debits: &[Debit],
    amounts: &[Decimal],
    known: &HashMap<String, Found>,
    mut holds: HashMap<Uuid, Decimal>,
) -> Result<Planned, BillingError> {
    let mut wallet = wallet.clone();
    let mut rows = Plan::default();
    let mut slots: Vec<Slot> = Vec::with_capacity(debits.len());
    for (debit, &amount) in debits.iter().zip(amounts) {
        if let Some(found) = known.get(&debit.reference) {
            let posted = replay(found.clone(), &wallet, |p| {
                p.kind == TransactionKind::DebitMessage && p.amount == amount
            })?;
            slots.push(Slot::Done(posted));
            continue;
        }
        if let Some(&index) = rows.index_of.get(debit.reference.as_str()) {
            if rows.amount[index] != amount {
                return Err(BillingError::ReferenceConflict(debit.reference.clone()));
            }
            slots.push(Slot::New(index));
            continue;
        }
        let capture = match debit.hold_id.and_then(|id| holds.get_mut(&id)) {
            Some(remaining) => {
                let capture = (-amount).min(*remaining);
                *remaining -= capture;
                capture
            }
            None => Decimal::ZERO,
        };
        let balance_after = wallet.balance + amount;
        let held_after = wallet.held - capture;
        wallet.ensure_covers(balance_after, held_after)?;
        wallet.balance = balance_after;
        wallet.held = held_after;
        if let (Some(hold_id), true) = (debit.hold_id, capture > Decimal::ZERO) {
            *rows.captures.entry(hold_id).or_default() += capture;
        }
        slots.push(Slot::New(rows.push(debit, amount, -capture, &wallet)));
    }
    Ok(Planned {
        wallet,
        rows,
        slots,
    })
}

enum Slot {
    Done(Posted),
    /// Index of the new row in the plan.
    New(usize),
}

/// The new rows, column by column (the shape unnest wants).
#[derive(Default)]
struct Plan {
    index_of: HashMap<String, usize>,
    amount: Vec<Decimal>,
    hold_delta: Vec<Decimal>,
    balance_after: Vec<Decimal>,
    held_after: Vec<Decimal>,
    reference: Vec<String>,
    hold_id: Vec<Option<Uuid>>,
    campaign_id: Vec<Option<Uuid>>,
    wa_message_id: Vec<Option<String>>,
    metadata: Vec<serde_json::Value>,
    captures: HashMap<Uuid, Decimal>,
    answered: Vec<bool>,
}

impl Plan {
    fn push(
        &mut self,
        debit: &Debit,
        amount: Decimal,
        hold_delta: Decimal,
        wallet: &LockedWallet,
    ) -> usize {
        let index = self.amount.len();
        self.index_of.insert(debit.reference.clone(), index);
        self.amount.push(amount);
        self.hold_delta.push(hold_delta);
        self.balance_after.push(wallet.balance);
        self.held_after.push(wallet.held);
        self.reference.push(debit.reference.clone());
        // A hold_id is kept only when the row captured from it (the ledger's
        // hold_required rule, and the invariant's per-hold sums, count captures by hold_id).
        self.hold_id
            .push(debit.hold_id.filter(|_| hold_delta < Decimal::ZERO));
        self.campaign_id.push(debit.campaign_id);
        self.wa_message_id.push(debit.wa_message_id.clone());
        self.metadata.push(if debit.metadata.is_null() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            debit.metadata.clone()
        });
        self.answered.push(false);
        index
    }
}

/// Remaining of each hold the debits name, ACTIVE ones only (a closed hold captures
/// nothing). A hold that is not this wallet's is `HoldNotFound`.
async fn load_holds(
    conn: &mut PgConnection,
    wallet: &LockedWallet,
    debits: &[Debit],
) -> Result<HashMap<Uuid, Decimal>, BillingError> {
    let mut ids: Vec<Uuid> = debits.iter().filter_map(|d| d.hold_id).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<(Uuid, Decimal, String)> = sqlx::query_as(
        "SELECT id, remaining, status FROM wallet_holds
         WHERE id = ANY($1) AND wallet_id = $2 FOR UPDATE",
    )
    .bind(&ids)
    .bind(wallet.id)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() != ids.len() {
        return Err(BillingError::HoldNotFound);
    }
    Ok(rows
        .into_iter()
        .map(|(id, remaining, status)| {
            let remaining = if status == "ACTIVE" {
                remaining
            } else {
                Decimal::ZERO
            };
            (id, remaining)
        })
        .collect())
}

/// One statement: the ledger rows (in order, so ids follow the running balances), the
/// wallet's new figures and the hold captures (a hold captured to zero is closed) — or
/// nothing at all (`None`) if one of the references was posted before.
async fn write(
    conn: &mut PgConnection,
    planned: &Planned,
) -> Result<Option<Vec<i64>>, BillingError> {
    let (wallet, plan) = (&planned.wallet, &planned.rows);
    if plan.amount.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let (capture_ids, capture_amounts): (Vec<Uuid>, Vec<Decimal>) =
        plan.captures.iter().map(|(id, c)| (*id, *c)).unzip();
    let rows: Vec<(Option<i64>, Option<String>, Option<i64>)> = sqlx::query_as(
        "WITH new AS (
             SELECT * FROM unnest($3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[],
                                  $7::text[], $8::uuid[], $9::uuid[], $10::text[], $11::jsonb[])
                 WITH ORDINALITY AS r(amount, hold_delta, balance_after, held_after, reference,
                                      hold_id, campaign_id, wa_message_id, metadata, ord)
         ), posted_before AS (
             SELECT reference FROM transactions WHERE reference = ANY($7::text[])
         ), ins AS (
             INSERT INTO transactions (wallet_id, vendor_id, kind, amount, hold_delta,
                 balance_after, held_after, reference, hold_id, campaign_id, wa_message_id,
                 metadata)
             SELECT $1, $2, 'DEBIT_MESSAGE', amount, hold_delta, balance_after, held_after,
                    reference, hold_id, campaign_id, wa_message_id, metadata
             FROM new WHERE NOT EXISTS (SELECT 1 FROM posted_before) ORDER BY ord
             RETURNING id, reference
         ), moved AS (
             UPDATE wallets SET balance = $12, held = $13
             WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM posted_before)
         ), captured AS (
             UPDATE wallet_holds h
             SET captured = h.captured + c.amount,
                 status = CASE WHEN h.remaining = c.amount THEN 'CLOSED' ELSE h.status END,
                 closed_at = CASE WHEN h.remaining = c.amount THEN now() ELSE h.closed_at END
             FROM unnest($14::uuid[], $15::numeric[]) AS c(id, amount)
             WHERE h.id = c.id AND NOT EXISTS (SELECT 1 FROM posted_before)
         )
         SELECT ins.id, NULL::text, new.ord FROM ins JOIN new USING (reference)
         UNION ALL
         SELECT NULL, reference, NULL FROM posted_before
         ORDER BY 3",
    )
    .bind(wallet.id)
    .bind(wallet.vendor.as_uuid())
    .bind(&plan.amount)
    .bind(&plan.hold_delta)
    .bind(&plan.balance_after)
    .bind(&plan.held_after)
    .bind(&plan.reference)
    .bind(&plan.hold_id)
    .bind(&plan.campaign_id)
    .bind(&plan.wa_message_id)
    .bind(&plan.metadata)
    .bind(wallet.balance)
    .bind(wallet.held)
    .bind(&capture_ids)
    .bind(&capture_amounts)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| {
        let first = plan.reference.first().map(String::as_str).unwrap_or("");
        reference_conflict_or(e, first)
    })?;
    if rows.iter().any(|(_, before, _)| before.is_some()) {
        return Ok(None);
    }
    Ok(Some(rows.into_iter().filter_map(|(id, _, _)| id).collect()))
}
