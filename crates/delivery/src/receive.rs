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

use crate::apply::rows::{self, EventRow, LogRow, NOT_OUTBOUND, PARK_BACKOFF_BASE};
use crate::apply::{ApplyReport, StatusApplier};
use crate::store::{Columns, StatusSource};
use crate::DeliveryError;

/// Statuses received in one processing batch, waiting to be applied together.
#[derive(Debug, Default)]
pub struct ReceivedStatuses {
    statuses: Vec<Received>,
}

#[derive(Debug)]
struct Received {
    inbox_id: i64,
    waba_id: String,
    phone_number_id: Option<String>,
    /// When the webhook carrying it was received (the start of the charge latency).
    received_at: DateTime<Utc>,
    update: StatusUpdate,
    /// The status object as Meta sent it.
    payload: Value,
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
        let mut raw = raw
            .filter(|raw| raw.len() == statuses.len())
            .map(Vec::into_iter);
        self.statuses.reserve(statuses.len());
        for update in statuses {
            let payload = match raw.as_mut().and_then(Iterator::next) {
                Some(raw) => raw,
                None => serde_json::to_value(&update).unwrap_or(Value::Null),
            };
            self.statuses.push(Received {
                inbox_id: source.inbox_id,
                waba_id: source.waba_id.to_owned(),
                phone_number_id: source.phone_number_id.map(str::to_owned),
                received_at,
                update,
                payload,
            });
        }
    }

    /// Takes every status of `other` (the rows of a batch are gathered into one).
    pub fn append(&mut self, mut other: Self) {
        self.statuses.append(&mut other.statuses);
    }

    pub fn len(&self) -> usize {
        self.statuses.len()
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

/// What becomes of a new status at insert.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Applied,
    Parked,
    Dead,
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

        let mut insert = Insert::with_capacity(order.len());
        for &i in &order {
            let status = &mut statuses[i];
            let fate = match by_wamid.get(status.update.id.as_str()) {
                Some(log) if log.is_outbound() => Fate::Applied,
                Some(_) => Fate::Dead,
                None => Fate::Parked,
            };
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
        let mut events: Vec<(usize, EventRow)> = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            let status = &statuses[i];
            let Some(&id) = new_keys.get(&(status.update.id.as_str(), keys[i].as_str())) else {
                continue;
            };
            match insert.fates[k] {
                Fate::Applied => events.push((i, event_row(id, status, &keys[i], &insert, k))),
                Fate::Parked => report.outcome.parked += 1,
                Fate::Dead => report.outcome.dead += 1,
            }
        }
        report.outcome.applied = events.len();
        let mut per_log: BTreeMap<i64, (&LogRow, Vec<&EventRow>)> = BTreeMap::new();
        for (i, event) in &events {
            if let Some(log) = by_wamid.get(statuses[*i].update.id.as_str()) {
                per_log
                    .entry(log.id)
                    .or_insert((log, Vec::new()))
                    .1
                    .push(event);
            }
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
fn event_row(id: i64, status: &Received, key: &str, insert: &Insert, k: usize) -> EventRow {
    let first_error = insert.columns.payloads[k]
        .get("errors")
        .and_then(|errors| errors.get(0));
    EventRow {
        id,
        wa_message_id: status.update.id.clone(),
        status: key.to_owned(),
        status_at: status.update.timestamp.0,
        pricing_model: insert.columns.pricing_models[k].clone(),
        pricing_category: insert.columns.pricing_categories[k].clone(),
        pricing_type: insert.columns.pricing_types[k].clone(),
        billable: insert.columns.billables[k],
        conversation_id: insert.columns.conversation_ids[k].clone(),
        error_code: insert.columns.error_codes[k],
        error_title: insert.columns.error_titles[k].clone(),
        error_message: first_error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        error_details: first_error.and_then(|e| e.get("error_data")).cloned(),
        received_at: status.received_at,
        attempts: 0,
    }
}

/// The batch's statuses as column arrays for one insert, sorted by (wamid, status).
struct Insert {
    columns: Columns,
    inbox_ids: Vec<i64>,
    waba_ids: Vec<String>,
    phone_number_ids: Vec<Option<String>>,
    received_at: Vec<DateTime<Utc>>,
    fates: Vec<Fate>,
}

impl Insert {
    fn with_capacity(n: usize) -> Self {
        Self {
            columns: Columns::with_capacity(n),
            inbox_ids: Vec::with_capacity(n),
            waba_ids: Vec::with_capacity(n),
            phone_number_ids: Vec::with_capacity(n),
            received_at: Vec::with_capacity(n),
            fates: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, status: &Received, payload: Value, fate: Fate) {
        self.columns.push(&status.update, payload);
        self.inbox_ids.push(status.inbox_id);
        self.waba_ids.push(status.waba_id.clone());
        self.phone_number_ids.push(status.phone_number_id.clone());
        self.received_at.push(status.received_at);
        self.fates.push(fate);
    }

    /// Inserts every status not stored before; returns (id, wamid, status) of the new ones.
    async fn write(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
        if self.fates.is_empty() {
            return Ok(Vec::new());
        }
        let fates: Vec<&str> = self
            .fates
            .iter()
            .map(|fate| match fate {
                Fate::Applied => "A",
                Fate::Parked => "P",
                Fate::Dead => "D",
            })
            .collect();
        let c = &self.columns;
        // The parked state is what the applier's first park would have left: one attempt,
        // due again after the first backoff.
        sqlx::query_as(
            "INSERT INTO message_status_events \
                 (inbox_id, waba_id, phone_number_id, wa_message_id, status, status_at, \
                  recipient_id, recipient_user_id, pricing_model, pricing_category, pricing_type, \
                  billable, conversation_id, conversation_origin, error_code, error_title, \
                  payload, received_at, applied_at, attempts, next_attempt_at, dead_at, \
                  dead_reason) \
             SELECT t.inbox_id, t.waba_id, t.phone_number_id, t.wamid, t.status, t.status_at, \
                    t.recipient_id, t.recipient_user_id, t.pricing_model, t.pricing_category, \
                    t.pricing_type, t.billable, t.conversation_id, t.conversation_origin, \
                    t.error_code, t.error_title, t.payload, t.received_at, \
                    CASE WHEN t.fate = 'A' THEN now() END, \
                    CASE WHEN t.fate = 'A' THEN 0 ELSE 1 END, \
                    CASE WHEN t.fate = 'P' THEN now() + make_interval(secs => $20) END, \
                    CASE WHEN t.fate = 'D' THEN now() END, \
                    CASE WHEN t.fate = 'D' THEN $21 END \
               FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], \
                           $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], \
                           $11::text[], $12::bool[], $13::text[], $14::text[], $15::int4[], \
                           $16::text[], $17::jsonb[], $18::timestamptz[], $19::text[]) \
                    AS t(inbox_id, waba_id, phone_number_id, wamid, status, status_at, \
                         recipient_id, recipient_user_id, pricing_model, pricing_category, \
                         pricing_type, billable, conversation_id, conversation_origin, \
                         error_code, error_title, payload, received_at, fate) \
             ON CONFLICT (wa_message_id, status) DO NOTHING \
             RETURNING id, wa_message_id, status",
        )
        .bind(&self.inbox_ids)
        .bind(&self.waba_ids)
        .bind(&self.phone_number_ids)
        .bind(&c.wamids)
        .bind(&c.statuses)
        .bind(&c.times)
        .bind(&c.recipient_ids)
        .bind(&c.recipient_user_ids)
        .bind(&c.pricing_models)
        .bind(&c.pricing_categories)
        .bind(&c.pricing_types)
        .bind(&c.billables)
        .bind(&c.conversation_ids)
        .bind(&c.conversation_origins)
        .bind(&c.error_codes)
        .bind(&c.error_titles)
        .bind(&c.payloads)
        .bind(&self.received_at)
        .bind(&fates)
        .bind(PARK_BACKOFF_BASE.as_secs_f64())
        .bind(NOT_OUTBOUND)
        .fetch_all(conn)
        .await
    }
}
