//! Storing statuses in `message_status_events`: one `INSERT … SELECT FROM unnest(…) ON
//! CONFLICT (wa_message_id, status) DO NOTHING` for a whole batch, used by the inline path
//! (statuses stored already applied, parked or dead) and by [`store_statuses`] (stored due,
//! for the [`crate::StatusApplier`]'s queue).

use chrono::{DateTime, Utc};
use kloyst_meta::webhook::StatusUpdate;
use serde_json::Value;
use sqlx::PgConnection;

use crate::apply::rows::{NOT_OUTBOUND, PARK_BACKOFF_BASE};

/// Where a batch of statuses came from.
#[derive(Clone, Copy, Debug)]
pub struct StatusSource<'a> {
    pub inbox_id: i64,
    /// `entry[].id`.
    pub waba_id: &'a str,
    /// `metadata.phone_number_id`.
    pub phone_number_id: Option<&'a str>,
}

/// How many statuses were new, and how many were duplicates of stored ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredStatuses {
    pub new: u64,
    pub duplicates: u64,
}

/// One status as received, ready to be stored.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) inbox_id: i64,
    pub(crate) waba_id: String,
    pub(crate) phone_number_id: Option<String>,
    /// When the webhook carrying it was received (the start of the charge latency).
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) update: StatusUpdate,
    /// The status object as Meta sent it.
    pub(crate) payload: Value,
}

/// `statuses` of one change as [`Received`]. `raw` is the `statuses` array exactly as Meta
/// sent it (same order), kept as each row's payload so fields this code does not know
/// survive; without it the parsed form is kept.
pub(crate) fn to_received<'a>(
    source: StatusSource<'a>,
    received_at: DateTime<Utc>,
    statuses: Vec<StatusUpdate>,
    raw: Option<Vec<Value>>,
) -> impl Iterator<Item = Received> + 'a {
    let mut raw = raw
        .filter(|raw| raw.len() == statuses.len())
        .map(Vec::into_iter);
    statuses.into_iter().map(move |update| {
        let payload = match raw.as_mut().and_then(Iterator::next) {
            Some(raw) => raw,
            None => serde_json::to_value(&update).unwrap_or(Value::Null),
        };
        Received {
            inbox_id: source.inbox_id,
            waba_id: source.waba_id.to_owned(),
            phone_number_id: source.phone_number_id.map(str::to_owned),
            received_at,
            update,
            payload,
        }
    })
}

/// Stores `statuses` in one statement, due for the applier's queue. A (wamid, status) already
/// stored, by an earlier delivery or earlier in this batch, is a duplicate and is not stored
/// again. (The webhook processing stores and applies in one go: `apply_received`.)
pub async fn store_statuses(
    conn: &mut PgConnection,
    source: StatusSource<'_>,
    statuses: &[StatusUpdate],
    raw: Option<&[Value]>,
) -> Result<StoredStatuses, sqlx::Error> {
    let mut insert = Insert::with_capacity(statuses.len());
    for mut status in to_received(
        source,
        Utc::now(),
        statuses.to_vec(),
        raw.map(<[Value]>::to_vec),
    ) {
        let payload = std::mem::take(&mut status.payload);
        insert.push(&status, payload, Fate::Queued);
    }
    let new = insert.write(conn).await?.len() as u64;
    Ok(StoredStatuses {
        new,
        duplicates: statuses.len() as u64 - new,
    })
}

/// What a new status is stored as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Due for the applier's queue.
    Queued,
    /// Applied by the caller in the same transaction.
    Applied,
    /// Parked as the applier's first park leaves it: one attempt, due after the first
    /// backoff.
    Parked,
    /// Dead: its wamid is an inbound message's.
    Dead,
}

impl Fate {
    fn code(self) -> &'static str {
        match self {
            Self::Queued => "Q",
            Self::Applied => "A",
            Self::Parked => "P",
            Self::Dead => "D",
        }
    }
}

/// Statuses as column arrays, for one `unnest` insert.
#[derive(Default)]
pub(crate) struct Insert {
    pub(crate) inbox_ids: Vec<i64>,
    pub(crate) waba_ids: Vec<String>,
    pub(crate) phone_number_ids: Vec<Option<String>>,
    pub(crate) wamids: Vec<String>,
    pub(crate) statuses: Vec<String>,
    pub(crate) times: Vec<DateTime<Utc>>,
    pub(crate) recipient_ids: Vec<Option<String>>,
    pub(crate) recipient_user_ids: Vec<Option<String>>,
    pub(crate) pricing_models: Vec<Option<String>>,
    pub(crate) pricing_categories: Vec<Option<String>>,
    pub(crate) pricing_types: Vec<Option<String>>,
    pub(crate) billables: Vec<Option<bool>>,
    pub(crate) conversation_ids: Vec<Option<String>>,
    pub(crate) conversation_origins: Vec<Option<String>>,
    pub(crate) error_codes: Vec<Option<i32>>,
    pub(crate) error_titles: Vec<Option<String>>,
    pub(crate) payloads: Vec<Value>,
    pub(crate) received_at: Vec<DateTime<Utc>>,
    pub(crate) fates: Vec<Fate>,
}

impl Insert {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            wamids: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            fates: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    pub(crate) fn push(&mut self, received: &Received, payload: Value, fate: Fate) {
        let status = &received.update;
        let pricing = status.pricing.as_ref();
        let conversation = status.conversation.as_ref();
        let first_error = status.errors.first();
        self.inbox_ids.push(received.inbox_id);
        self.waba_ids.push(received.waba_id.clone());
        self.phone_number_ids.push(received.phone_number_id.clone());
        self.wamids.push(status.id.clone());
        self.statuses.push(status.status.as_upper());
        self.times.push(status.timestamp.0);
        self.recipient_ids.push(status.recipient_id.clone());
        self.recipient_user_ids
            .push(status.recipient_user_id.clone());
        self.pricing_models
            .push(pricing.and_then(|p| p.pricing_model.clone()));
        self.pricing_categories
            .push(pricing.and_then(|p| p.normalized_category()));
        self.pricing_types
            .push(pricing.and_then(|p| p.kind.clone()));
        self.billables.push(pricing.and_then(|p| p.billable));
        self.conversation_ids
            .push(conversation.and_then(|c| c.id.clone()));
        self.conversation_origins.push(
            conversation
                .and_then(|c| c.origin.as_ref())
                .and_then(|o| o.kind.clone()),
        );
        self.error_codes
            .push(first_error.and_then(|e| i32::try_from(e.code).ok()));
        self.error_titles
            .push(first_error.and_then(|e| e.title.clone().or_else(|| e.message.clone())));
        self.payloads.push(payload);
        self.received_at.push(received.received_at);
        self.fates.push(fate);
    }

    /// Inserts every status not stored before; returns (id, wamid, status) of the new ones.
    pub(crate) async fn write(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
        if self.fates.is_empty() {
            return Ok(Vec::new());
        }
        let fates: Vec<&str> = self.fates.iter().map(|fate| fate.code()).collect();
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
                    CASE WHEN t.fate IN ('Q', 'A') THEN 0 ELSE 1 END, \
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
        .bind(&self.wamids)
        .bind(&self.statuses)
        .bind(&self.times)
        .bind(&self.recipient_ids)
        .bind(&self.recipient_user_ids)
        .bind(&self.pricing_models)
        .bind(&self.pricing_categories)
        .bind(&self.pricing_types)
        .bind(&self.billables)
        .bind(&self.conversation_ids)
        .bind(&self.conversation_origins)
        .bind(&self.error_codes)
        .bind(&self.error_titles)
        .bind(&self.payloads)
        .bind(&self.received_at)
        .bind(&fates)
        .bind(PARK_BACKOFF_BASE.as_secs_f64())
        .bind(NOT_OUTBOUND)
        .fetch_all(conn)
        .await
    }
}
