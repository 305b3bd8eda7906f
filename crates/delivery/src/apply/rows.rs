//! The applier's SQL: claim due statuses, lock their message logs, park or dead-letter the
//! ones without a log, write the folded logs in one statement, bump the campaign counters.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::state::{ErrorFacts, EventKind, MessageState, PricingFacts, Status, StatusEvent};

/// Reason of a status whose message log never appeared.
pub const NO_MESSAGE: &str = "no message with this wamid";
/// Reason of a status whose wamid is an inbound message's.
pub const NOT_OUTBOUND: &str = "the wamid is not an outbound message";

/// First park backoff; doubles per attempt up to [`PARK_BACKOFF_MAX`].
pub(crate) const PARK_BACKOFF_BASE: Duration = Duration::from_secs(1);
const PARK_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One claimed `message_status_events` row.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub wa_message_id: String,
    pub status: String,
    pub status_at: DateTime<Utc>,
    pub pricing_model: Option<String>,
    pub pricing_category: Option<String>,
    pub pricing_type: Option<String>,
    pub billable: Option<bool>,
    pub conversation_id: Option<String>,
    pub error_code: Option<i32>,
    pub error_title: Option<String>,
    pub error_message: Option<String>,
    pub error_details: Option<serde_json::Value>,
    pub received_at: DateTime<Utc>,
    pub attempts: i32,
}

impl EventRow {
    pub fn to_event(&self) -> StatusEvent {
        let kind = EventKind::parse(&self.status);
        let error = (kind == EventKind::Failed
            && (self.error_code.is_some() || self.error_title.is_some()))
        .then(|| ErrorFacts {
            code: self.error_code,
            title: self.error_title.clone(),
            message: self.error_message.clone(),
            details: self.error_details.clone(),
        });
        StatusEvent {
            pricing: PricingFacts::from_meta(
                self.pricing_model.as_deref(),
                self.pricing_category.as_deref(),
                self.pricing_type.as_deref(),
                self.billable,
                self.conversation_id.as_deref(),
            ),
            kind,
            at: self.status_at,
            error,
        }
    }
}

/// Claims up to `limit` due statuses, oldest first; other appliers skip them.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, wa_message_id, status, status_at, pricing_model, pricing_category, \
                pricing_type, billable, conversation_id, error_code, error_title, \
                payload->'errors'->0->>'message' AS error_message, \
                payload->'errors'->0->'error_data' AS error_details, received_at, attempts \
           FROM message_status_events \
          WHERE applied_at IS NULL AND dead_at IS NULL \
            AND (next_attempt_at IS NULL OR next_attempt_at <= now()) \
          ORDER BY id \
          LIMIT $1 \
            FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// One locked `message_logs` row: what the fold and the charge need.
#[derive(Debug, sqlx::FromRow)]
pub struct LogRow {
    pub id: i64,
    pub wa_message_id: String,
    pub vendor_id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub direction: String,
    pub country: Option<String>,
    pub status: String,
    pub status_at: Option<DateTime<Utc>>,
    pub flags: Vec<String>,
    pub template_category: Option<String>,
    pub pricing_category: Option<String>,
    pub pricing_model: Option<String>,
    pub pricing_type: Option<String>,
    pub billable: Option<bool>,
    pub conversation_id: Option<String>,
    pub pricing_status: Option<String>,
    pub error_code: Option<i32>,
    pub error_title: Option<String>,
    pub error_message: Option<String>,
    pub error_details: Option<serde_json::Value>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub charged_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl LogRow {
    pub fn is_outbound(&self) -> bool {
        self.direction == "OUTBOUND" && Status::parse(&self.status).is_some()
    }

    pub fn to_state(&self) -> MessageState {
        let mut flags = self.flags.clone();
        flags.sort();
        flags.dedup();
        MessageState {
            status: Status::parse(&self.status).unwrap_or(Status::Pending),
            status_at: self.status_at,
            sent_at: self.sent_at,
            delivered_at: self.delivered_at,
            read_at: self.read_at,
            failed_at: self.failed_at,
            flags,
            template_category: self.template_category.clone(),
            pricing: self.billable.map(|billable| PricingFacts {
                model: self.pricing_model.clone(),
                category: self.pricing_category.clone(),
                kind: self.pricing_type.clone(),
                billable,
                conversation_id: self.conversation_id.clone(),
            }),
            pricing_status: self.pricing_status.as_deref().and_then(Status::parse),
            error: ErrorFacts {
                code: self.error_code,
                title: self.error_title.clone(),
                message: self.error_message.clone(),
                details: self.error_details.clone(),
            },
            charged: self.charged_at.is_some(),
        }
    }
}

/// Locks the outbound logs of `wamids` in id order (two appliers never deadlock on them).
pub async fn lock_logs(
    conn: &mut PgConnection,
    wamids: &[String],
) -> Result<Vec<LogRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, wa_message_id, vendor_id, campaign_id, direction, country, status, status_at, \
                flags, template_category, pricing_category, pricing_model, pricing_type, billable, \
                conversation_id, pricing_status, error_code, error_title, error_message, \
                error_details, sent_at, delivered_at, read_at, failed_at, charged_at, created_at \
           FROM message_logs \
          WHERE wa_message_id = ANY($1) \
          ORDER BY id \
            FOR UPDATE",
    )
    .bind(wamids)
    .fetch_all(conn)
    .await
}

/// Parks statuses without a log: one more attempt, due again after a backoff; those received
/// more than `timeout` ago are dead-lettered instead. Returns how many went dead.
pub async fn park(
    conn: &mut PgConnection,
    ids: &[i64],
    timeout: Duration,
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let dead: Vec<bool> = sqlx::query_scalar(
        "UPDATE message_status_events \
            SET attempts = attempts + 1, \
                next_attempt_at = CASE WHEN received_at + make_interval(secs => $2) <= now() \
                    THEN NULL \
                    ELSE now() + make_interval(secs => least($3 * power(2, least(attempts, 20)), $4)) END, \
                dead_at = CASE WHEN received_at + make_interval(secs => $2) <= now() THEN now() END, \
                dead_reason = CASE WHEN received_at + make_interval(secs => $2) <= now() THEN $5 END \
          WHERE id = ANY($1) \
      RETURNING dead_at IS NOT NULL",
    )
    .bind(ids)
    .bind(timeout.as_secs_f64())
    .bind(PARK_BACKOFF_BASE.as_secs_f64())
    .bind(PARK_BACKOFF_MAX.as_secs_f64())
    .bind(NO_MESSAGE)
    .fetch_all(conn)
    .await?;
    Ok(dead.into_iter().filter(|d| *d).count() as u64)
}

/// Dead-letters statuses at once, with `reason`.
pub async fn dead_letter(
    conn: &mut PgConnection,
    ids: &[i64],
    reason: &str,
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "UPDATE message_status_events \
            SET attempts = attempts + 1, next_attempt_at = NULL, dead_at = now(), dead_reason = $2 \
          WHERE id = ANY($1)",
    )
    .bind(ids)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn mark_applied(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE message_status_events SET applied_at = now(), next_attempt_at = NULL \
          WHERE id = ANY($1)",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// The charge recorded on a log (cost 0 and no ledger row for a free message).
#[derive(Clone, Debug, Default)]
pub struct Charged {
    pub market: Option<String>,
    pub rate_card_id: Option<Uuid>,
    pub meta_rate: Option<Decimal>,
    pub rate_currency: Option<String>,
    pub fx_rate: Option<Decimal>,
    pub meta_cost: Decimal,
    pub margin: Decimal,
    pub cost: Decimal,
    pub ledger_transaction_id: Option<i64>,
}

/// The folded logs as column arrays, for one `UPDATE … FROM unnest`.
#[derive(Default)]
pub struct LogUpdates {
    id: Vec<i64>,
    status: Vec<&'static str>,
    status_at: Vec<Option<DateTime<Utc>>>,
    flags: Vec<String>,
    pricing_category: Vec<Option<String>>,
    pricing_model: Vec<Option<String>>,
    pricing_type: Vec<Option<String>>,
    billable: Vec<Option<bool>>,
    conversation_id: Vec<Option<String>>,
    pricing_status: Vec<Option<&'static str>>,
    error_code: Vec<Option<i32>>,
    error_title: Vec<Option<String>>,
    error_message: Vec<Option<String>>,
    error_details: Vec<Option<serde_json::Value>>,
    sent_at: Vec<Option<DateTime<Utc>>>,
    delivered_at: Vec<Option<DateTime<Utc>>>,
    read_at: Vec<Option<DateTime<Utc>>>,
    failed_at: Vec<Option<DateTime<Utc>>>,
    charged: Vec<bool>,
    market: Vec<Option<String>>,
    rate_card_id: Vec<Option<Uuid>>,
    meta_rate: Vec<Option<Decimal>>,
    rate_currency: Vec<Option<String>>,
    fx_rate: Vec<Option<Decimal>>,
    meta_cost: Vec<Option<Decimal>>,
    margin: Vec<Option<Decimal>>,
    cost: Vec<Option<Decimal>>,
    ledger_transaction_id: Vec<Option<i64>>,
}

impl LogUpdates {
    pub fn len(&self) -> usize {
        self.id.len()
    }

    pub fn push(&mut self, id: i64, state: &MessageState, charged: Option<&Charged>) {
        let pricing = state.pricing.as_ref();
        self.id.push(id);
        self.status.push(state.status.as_str());
        self.status_at.push(state.status_at);
        // Flags are upper-case words without commas.
        self.flags.push(state.flags.join(","));
        self.pricing_category
            .push(pricing.and_then(|p| p.category.clone()));
        self.pricing_model
            .push(pricing.and_then(|p| p.model.clone()));
        self.pricing_type.push(pricing.and_then(|p| p.kind.clone()));
        self.billable.push(pricing.map(|p| p.billable));
        self.conversation_id
            .push(pricing.and_then(|p| p.conversation_id.clone()));
        self.pricing_status
            .push(state.pricing_status.map(Status::as_str));
        self.error_code.push(state.error.code);
        self.error_title.push(state.error.title.clone());
        self.error_message.push(state.error.message.clone());
        self.error_details.push(state.error.details.clone());
        self.sent_at.push(state.sent_at);
        self.delivered_at.push(state.delivered_at);
        self.read_at.push(state.read_at);
        self.failed_at.push(state.failed_at);
        self.charged.push(charged.is_some());
        self.market.push(charged.and_then(|c| c.market.clone()));
        self.rate_card_id.push(charged.and_then(|c| c.rate_card_id));
        self.meta_rate.push(charged.and_then(|c| c.meta_rate));
        self.rate_currency
            .push(charged.and_then(|c| c.rate_currency.clone()));
        self.fx_rate.push(charged.and_then(|c| c.fx_rate));
        self.meta_cost.push(charged.map(|c| c.meta_cost));
        self.margin.push(charged.map(|c| c.margin));
        self.cost.push(charged.map(|c| c.cost));
        self.ledger_transaction_id
            .push(charged.and_then(|c| c.ledger_transaction_id));
    }

    /// Writes every folded log in one statement; charge columns only where `charged`.
    pub async fn write(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE message_logs l \
                SET status = u.status, status_at = u.status_at, updated_at = now(), \
                    flags = string_to_array(u.flags, ','), \
                    pricing_category = u.pricing_category, pricing_model = u.pricing_model, \
                    pricing_type = u.pricing_type, billable = u.billable, \
                    conversation_id = u.conversation_id, pricing_status = u.pricing_status, \
                    error_code = u.error_code, error_title = u.error_title, \
                    error_message = u.error_message, error_details = u.error_details, \
                    sent_at = u.sent_at, delivered_at = u.delivered_at, read_at = u.read_at, \
                    failed_at = u.failed_at, \
                    market = CASE WHEN u.charged THEN u.market ELSE l.market END, \
                    rate_card_id = CASE WHEN u.charged THEN u.rate_card_id ELSE l.rate_card_id END, \
                    meta_rate = CASE WHEN u.charged THEN u.meta_rate ELSE l.meta_rate END, \
                    rate_currency = CASE WHEN u.charged THEN u.rate_currency ELSE l.rate_currency END, \
                    fx_rate = CASE WHEN u.charged THEN u.fx_rate ELSE l.fx_rate END, \
                    meta_cost = CASE WHEN u.charged THEN u.meta_cost ELSE l.meta_cost END, \
                    margin = CASE WHEN u.charged THEN u.margin ELSE l.margin END, \
                    cost = CASE WHEN u.charged THEN u.cost ELSE l.cost END, \
                    charged_at = CASE WHEN u.charged THEN now() ELSE l.charged_at END, \
                    ledger_transaction_id = CASE WHEN u.charged THEN u.ledger_transaction_id \
                                                 ELSE l.ledger_transaction_id END \
               FROM unnest($1::int8[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], \
                           $6::text[], $7::text[], $8::bool[], $9::text[], $10::text[], \
                           $11::int4[], $12::text[], $13::text[], $14::jsonb[], \
                           $15::timestamptz[], $16::timestamptz[], $17::timestamptz[], \
                           $18::timestamptz[], $19::bool[], $20::text[], $21::uuid[], \
                           $22::numeric[], $23::text[], $24::numeric[], $25::numeric[], \
                           $26::numeric[], $27::numeric[], $28::int8[]) \
                    AS u(id, status, status_at, flags, pricing_category, pricing_model, \
                         pricing_type, billable, conversation_id, pricing_status, error_code, \
                         error_title, error_message, error_details, sent_at, delivered_at, \
                         read_at, failed_at, charged, market, rate_card_id, meta_rate, \
                         rate_currency, fx_rate, meta_cost, margin, cost, ledger_transaction_id) \
              WHERE l.id = u.id",
        )
        .bind(&self.id)
        .bind(&self.status)
        .bind(&self.status_at)
        .bind(&self.flags)
        .bind(&self.pricing_category)
        .bind(&self.pricing_model)
        .bind(&self.pricing_type)
        .bind(&self.billable)
        .bind(&self.conversation_id)
        .bind(&self.pricing_status)
        .bind(&self.error_code)
        .bind(&self.error_title)
        .bind(&self.error_message)
        .bind(&self.error_details)
        .bind(&self.sent_at)
        .bind(&self.delivered_at)
        .bind(&self.read_at)
        .bind(&self.failed_at)
        .bind(&self.charged)
        .bind(&self.market)
        .bind(&self.rate_card_id)
        .bind(&self.meta_rate)
        .bind(&self.rate_currency)
        .bind(&self.fx_rate)
        .bind(&self.meta_cost)
        .bind(&self.margin)
        .bind(&self.cost)
        .bind(&self.ledger_transaction_id)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Per-campaign counter deltas of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterDelta {
    pub delivered: i32,
    pub read: i32,
    pub failed: i32,
    pub cost: Decimal,
}

impl CounterDelta {
    /// What moving one message from `before` to `after` does to its campaign's funnel.
    pub fn of(before: &MessageState, after: &MessageState) -> Self {
        let flag = |b: bool| i32::from(b);
        Self {
            delivered: flag(after.delivery_evidence()) - flag(before.delivery_evidence()),
            read: flag(after.read()) - flag(before.read()),
            failed: flag(after.status == Status::Failed) - flag(before.status == Status::Failed),
            cost: Decimal::ZERO,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, other: &Self) {
        self.delivered += other.delivered;
        self.read += other.read;
        self.failed += other.failed;
        self.cost += other.cost;
    }
}

/// Locks the campaigns whose counters this batch moves, in id order, before any wallet is
/// locked. The applier's lock order is message_logs → campaigns → wallet (→ its holds): work
/// that locks a campaign and then its wallet (settlement) cannot deadlock with it.
pub async fn lock_campaigns(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT id FROM campaigns WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds the deltas, one statement for the batch. The deltas come from the difference between
/// the locked logs and their folded state, so statuses applied before (replays) add 0.
pub async fn bump_campaigns(
    conn: &mut PgConnection,
    deltas: &[(Uuid, CounterDelta)],
) -> Result<(), sqlx::Error> {
    if deltas.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = deltas.iter().map(|(id, _)| *id).collect();
    let delivered: Vec<i32> = deltas.iter().map(|(_, d)| d.delivered).collect();
    let read: Vec<i32> = deltas.iter().map(|(_, d)| d.read).collect();
    let failed: Vec<i32> = deltas.iter().map(|(_, d)| d.failed).collect();
    let cost: Vec<Decimal> = deltas.iter().map(|(_, d)| d.cost).collect();
    // GREATEST: a counter never goes below 0, even if a send failure was not counted.
    sqlx::query(
        "UPDATE campaigns c \
            SET delivered_count = GREATEST(c.delivered_count + u.delivered, 0), \
                read_count = GREATEST(c.read_count + u.read, 0), \
                failed_count = GREATEST(c.failed_count + u.failed, 0), \
                actual_cost = c.actual_cost + u.cost \
           FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::int4[], $5::numeric[]) \
                AS u(id, delivered, read, failed, cost) \
          WHERE c.id = u.id",
    )
    .bind(&ids)
    .bind(&delivered)
    .bind(&read)
    .bind(&failed)
    .bind(&cost)
    .execute(conn)
    .await?;
    Ok(())
}

/// Statuses waiting for their message log (parked, not dead).
pub async fn parked_count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM message_status_events \
          WHERE applied_at IS NULL AND dead_at IS NULL AND attempts > 0",
    )
    .fetch_one(conn)
    .await
}
