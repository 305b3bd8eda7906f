//! The inline path: statuses parsed out of a batch of inbox rows are stored and applied in
//! the batch's own transaction, so a status is written once (stored already applied) instead
//! of stored, claimed, and marked applied by the [`StatusApplier`]'s queue.
//!
//! One call per processing batch, in this order, which is also the applier's lock order:
//! 1. lock the message logs of every wamid in the batch, in id order;
//! 2. insert every (wamid, status) once, sorted, `ON CONFLICT DO NOTHING`: a status whose log
//!    is locked is stored applied, one without a log is stored parked (the applier retries it
//!    after its backoff), one of an inbound message is stored dead. Two batches carrying the
//!    same status never both apply it: the second insert finds the first one's row (waiting
//!    for its commit if needed) and skips it. Sorted keys keep two such inserts from waiting
//!    on each other in a cycle;
//! 3. fold, charge and write the logs as the applier does ([`StatusApplier::apply_to_logs`]).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use kloyst_meta::webhook::StatusUpdate;
use serde_json::Value;
use sqlx::PgConnection;

use crate::apply::rows::{self, EventRow, LogRow};
use crate::apply::{ApplyReport, StatusApplier};
use crate::store::{to_received, Fate, Insert, Received, StatusSource};
use crate::DeliveryError;

/// Statuses received in one processing batch, waiting to be applied together.
#[derive(Debug, Default)]
pub struct ReceivedStatuses {
    statuses: Vec<Received>,
}

impl ReceivedStatuses {
    /// Adds the `statuses` of one change. `raw` is the `statuses` array exactly as Meta sent
    /// it (same order), kept as each row's payload so fields this code does not know survive;
    /// without it the parsed form is kept.
    pub fn push(
        &mut self,
        source: StatusSource<'_>,
        received_at: DateTime<Utc>,
        statuses: Vec<StatusUpdate>,
        raw: Option<Vec<Value>>,
    ) {
        self.statuses
            .extend(to_received(source, received_at, statuses, raw));
    }

    /// Takes every status of `other` (the rows of a batch are gathered into one).
    pub fn append(&mut self, mut other: Self) {
        self.statuses.append(&mut other.statuses);
    }

    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
    }
}

/// What one inline application did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceivedReport {
    /// Statuses stored for the first time.
    pub new: u64,
    /// Statuses already stored (Meta's redeliveries, or twice in the batch).
    pub duplicates: u64,
    /// What became of the new ones, as an applier batch reports it (`claimed` = `new`):
    /// applied, parked (no log yet) or dead (an inbound message's wamid), and the charges.
    pub outcome: ApplyReport,
}

impl StatusApplier {
    /// Stores and applies `received` in the caller's transaction (see the module's text).
    /// Metrics are recorded here, before the caller commits: a batch that then fails to
    /// commit is retried and counted again.
    pub async fn apply_received(
        &self,
        conn: &mut PgConnection,
        received: ReceivedStatuses,
    ) -> Result<ReceivedReport, DeliveryError> {
        let total = received.statuses.len() as u64;
        let mut statuses = received.statuses;
        let keys: Vec<String> = statuses
            .iter()
            .map(|s| s.update.status.as_upper())
            .collect();
        let mut order: Vec<usize> = (0..statuses.len()).collect();
        order.sort_by(|&a, &b| {
            (statuses[a].update.id.as_str(), keys[a].as_str())
                .cmp(&(statuses[b].update.id.as_str(), keys[b].as_str()))
        });
        // Twice in one batch: the first copy (the earliest row) is the one stored.
        order.dedup_by(|b, a| {
            statuses[*a].update.id == statuses[*b].update.id && keys[*a] == keys[*b]
        });

        let mut wamids: Vec<String> = order
            .iter()
            .map(|&i| statuses[i].update.id.clone())
            .collect();
        wamids.dedup();
        let logs = rows::lock_logs(&mut *conn, &wamids).await?;
        let by_wamid: HashMap<&str, &LogRow> =
            logs.iter().map(|l| (l.wa_message_id.as_str(), l)).collect();

        // Each new status's log, in the order of the insert (None: parked or dead).
        let mut insert = Insert::with_capacity(order.len());
        let mut log_of: Vec<Option<&LogRow>> = Vec::with_capacity(order.len());
        for &i in &order {
            let status = &mut statuses[i];
            let log = by_wamid.get(status.update.id.as_str()).copied();
            let fate = match log {
                Some(log) if log.is_outbound() => Fate::Applied,
                Some(_) => Fate::Dead,
                None => Fate::Parked,
            };
            log_of.push(log.filter(|_| fate == Fate::Applied));
            let payload = std::mem::take(&mut status.payload);
            insert.push(status, payload, fate);
        }
        let stored = insert.write(&mut *conn).await?;

        // The new statuses of existing outbound logs, as the applier would have claimed them.
        let new_keys: HashMap<(&str, &str), i64> = stored
            .iter()
            .map(|(id, wamid, status)| ((wamid.as_str(), status.as_str()), *id))
            .collect();
        let mut report = ReceivedReport {
            new: stored.len() as u64,
            duplicates: total - stored.len() as u64,
            outcome: ApplyReport {
                claimed: stored.len(),
                ..ApplyReport::default()
            },
        };
        let mut events: Vec<(&LogRow, EventRow)> = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            let key = (insert.wamids[k].as_str(), insert.statuses[k].as_str());
            let Some(&id) = new_keys.get(&key) else {
                continue;
            };
            match log_of[k] {
                Some(log) => events.push((log, event_row(id, &statuses[i], &insert, k))),
                None if insert.fates[k] == Fate::Dead => report.outcome.dead += 1,
                None => report.outcome.parked += 1,
            }
        }
        report.outcome.applied = events.len();
        let mut per_log: BTreeMap<i64, (&LogRow, Vec<&EventRow>)> = BTreeMap::new();
        for (log, event) in &events {
            per_log
                .entry(log.id)
                .or_insert((log, Vec::new()))
                .1
                .push(event);
        }
        let messages = self
            .apply_to_logs(&mut *conn, per_log, &mut report.outcome)
            .await?;
        self.record_metrics(&report.outcome, &messages, None);
        if report.outcome.dead > 0 {
            tracing::warn!(
                dead = report.outcome.dead,
                "delivery statuses dead-lettered (their wamid is an inbound message's)"
            );
        }
        Ok(report)
    }
}

/// The stored form of a new status the applier folds (`error_message` and `error_details`
/// come from the payload, as the applier's claim reads them).
fn event_row(id: i64, status: &Received, insert: &Insert, k: usize) -> EventRow {
    let first_error = insert.payloads[k]
        .get("errors")
        .and_then(|errors| errors.get(0));
    EventRow {
        id,
        wa_message_id: status.update.id.clone(),
        status: insert.statuses[k].clone(),
        status_at: status.update.timestamp.0,
        pricing_model: insert.pricing_models[k].clone(),
        pricing_category: insert.pricing_categories[k].clone(),
        pricing_type: insert.pricing_types[k].clone(),
        billable: insert.billables[k],
        conversation_id: insert.conversation_ids[k].clone(),
        error_code: insert.error_codes[k],
        error_title: insert.error_titles[k].clone(),
        error_message: first_error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        error_details: first_error.and_then(|e| e.get("error_data")).cloned(),
        received_at: status.received_at,
        attempts: 0,
    }
}
