//! The status applier: moves message logs forward with Meta's statuses and charges the
//! wallet for delivered messages, exactly once, whatever order the statuses arrive in.
//!
//! One transaction per batch:
//! 1. claim up to `STATUS_APPLY_BATCH` due statuses (`ORDER BY id FOR UPDATE SKIP LOCKED`:
//!    appliers in several processes share the queue);
//! 2. lock their message logs in id order; a status whose wamid has no log yet is parked
//!    (the webhook raced the send's commit: due again after a backoff) and dead-lettered once
//!    it is older than `STATUS_PARK_TIMEOUT` — never dropped;
//! 3. fold each log's statuses ([`crate::state`]) and, for the newly chargeable, price them
//!    (Meta's category, the log's country, the send time) and debit each vendor's wallet in
//!    one `post_debits_in` (vendors in id order), reference `debit:<wamid>`, capturing the
//!    campaign's hold first. The ledger answers a reference posted before as a replay, and
//!    the log's `charged_at` is written in the same transaction: exactly once;
//! 4. write every changed log in one `UPDATE … FROM unnest`, mark the statuses applied and
//!    move the campaigns' counters by the difference between the locked and the folded logs.
//!
//! A billable message without a price is flagged `UNPRICED`, a vendor whose wallet refuses
//! the charge gets `CHARGE_REFUSED` on those messages; both are logged and left to the
//! reconciliation, and neither stops the rest of the batch.

mod charge;
pub(crate) mod rows;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use kloyst_billing::Debit;
use kloyst_pricing::Pricing;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use rows::{NOT_OUTBOUND, NO_MESSAGE};

use self::charge::{debit_vendor, PriceCache, Unpriced, VendorCharge};
use self::rows::{Charged, CounterDelta, EventRow, LogRow, LogUpdates};
use crate::settings::ApplierSettings;
use crate::state::{Charge, MessageState, StatusEvent, CHARGE_REFUSED, UNPRICED};
use crate::DeliveryError;

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Statuses claimed.
    pub claimed: usize,
    /// Statuses applied (their log exists), unknown statuses included.
    pub applied: usize,
    /// Statuses parked for a log that does not exist yet.
    pub parked: usize,
    /// Statuses dead-lettered.
    pub dead: usize,
    /// Message logs written.
    pub logs_changed: usize,
    /// Messages debited (one ledger row each).
    pub charged: usize,
    /// Messages recorded free (cost 0, no ledger row).
    pub free: usize,
    /// Billable messages flagged UNPRICED.
    pub unpriced: usize,
    /// Messages flagged CHARGE_REFUSED.
    pub refused: usize,
}

/// Applies stored statuses; cheap to share (`Arc`) between tasks.
pub struct StatusApplier {
    pg: PgPool,
    prices: PriceCache,
    settings: ApplierSettings,
}

/// One log of the batch: as locked, as folded, its statuses' latest arrival, and its charge.
pub(crate) struct Message<'a> {
    log: &'a LogRow,
    before: MessageState,
    after: MessageState,
    received_at: DateTime<Utc>,
    due: Option<Charge>,
    charged: Option<Charged>,
}

impl StatusApplier {
    pub fn new(pg: PgPool, pricing: Pricing, settings: ApplierSettings) -> Self {
        Self {
            pg,
            prices: PriceCache::new(pricing),
            settings,
        }
    }

    pub fn settings(&self) -> &ApplierSettings {
        &self.settings
    }

    /// Applies batches while there is work, then waits for the poll interval, until
    /// `shutdown`. New statuses are applied inline by the webhook processing
    /// ([`StatusApplier::apply_received`]); what reaches this queue is parked statuses coming
    /// due, replayed dead letters and statuses stored by [`crate::store_statuses`]. A failed
    /// batch is rolled back whole and retried after the poll interval.
    pub async fn run(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let idle = match self.apply_batch().await {
                Ok(report) => report.claimed == 0,
                Err(error) => {
                    tracing::error!(%error, "applying delivery statuses failed; retrying");
                    true
                }
            };
            if !idle {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    /// Claims, applies and charges one batch in one transaction.
    pub async fn apply_batch(&self) -> Result<ApplyReport, DeliveryError> {
        let mut tx = self.pg.begin().await?;
        let events = rows::claim(&mut tx, self.settings.batch).await?;
        let mut report = ApplyReport {
            claimed: events.len(),
            ..ApplyReport::default()
        };
        if events.is_empty() {
            tx.commit().await?;
            return Ok(report);
        }
        let mut wamids: Vec<String> = events.iter().map(|e| e.wa_message_id.clone()).collect();
        wamids.sort();
        wamids.dedup();
        let logs = rows::lock_logs(&mut tx, &wamids).await?;
        let by_wamid: HashMap<&str, &LogRow> =
            logs.iter().map(|l| (l.wa_message_id.as_str(), l)).collect();

        let (mut applied, mut parked, mut inbound) = (Vec::new(), Vec::new(), Vec::new());
        let mut per_log: BTreeMap<i64, (&LogRow, Vec<&EventRow>)> = BTreeMap::new();
        for event in &events {
            match by_wamid.get(event.wa_message_id.as_str()) {
                Some(log) if log.is_outbound() => {
                    applied.push(event.id);
                    per_log
                        .entry(log.id)
                        .or_insert((log, Vec::new()))
                        .1
                        .push(event);
                }
                Some(_) => inbound.push(event.id),
                None => parked.push(event.id),
            }
        }
        let messages = self.apply_to_logs(&mut tx, per_log, &mut report).await?;
        rows::mark_applied(&mut tx, &applied).await?;
        let dead_inbound = rows::dead_letter(&mut tx, &inbound, NOT_OUTBOUND).await?;
        let dead_parked = rows::park(&mut tx, &parked, self.settings.park_timeout).await?;
        let was_parked = events.iter().any(|e| e.attempts > 0);
        let parked_now = if was_parked || !parked.is_empty() || !inbound.is_empty() {
            Some(rows::parked_count(&mut tx).await?)
        } else {
            None
        };
        tx.commit().await?;

        report.applied = applied.len();
        report.dead = (dead_inbound + dead_parked) as usize;
        report.parked = parked.len() - dead_parked as usize;
        self.record_metrics(&report, &messages, parked_now);
        if report.dead > 0 {
            tracing::warn!(
                dead = report.dead,
                "delivery statuses dead-lettered (no outbound message with their wamid)"
            );
        }
        Ok(report)
    }

    /// Folds each locked log's new statuses into it, charges the messages that became
    /// chargeable, writes the changed logs in one statement and moves the campaigns' counters:
    /// the part shared by the applier's batches and the processor's inline path
    /// ([`StatusApplier::apply_received`]). Returns the folded messages (for the metrics).
    pub(crate) async fn apply_to_logs<'a>(
        &self,
        conn: &mut PgConnection,
        per_log: BTreeMap<i64, (&'a LogRow, Vec<&'a EventRow>)>,
        report: &mut ApplyReport,
    ) -> Result<Vec<Message<'a>>, DeliveryError> {
        let mut messages: Vec<Message<'a>> = per_log
            .into_values()
            .map(|(log, events)| fold(log, &events))
            .collect();

        self.charge(&mut *conn, &mut messages, report).await?;

        let mut updates = LogUpdates::default();
        let mut deltas: BTreeMap<Uuid, CounterDelta> = BTreeMap::new();
        for message in &messages {
            if message.after != message.before || message.charged.is_some() {
                updates.push(message.log.id, &message.after, message.charged.as_ref());
            }
            if let Some(campaign) = message.log.campaign_id {
                let mut delta = CounterDelta::of(&message.before, &message.after);
                delta.cost = message.charged.as_ref().map_or(Decimal::ZERO, |c| c.cost);
                deltas.entry(campaign).or_default().add(&delta);
            }
        }
        updates.write(&mut *conn).await?;
        let deltas: Vec<(Uuid, CounterDelta)> =
            deltas.into_iter().filter(|(_, d)| !d.is_zero()).collect();
        rows::bump_campaigns(&mut *conn, &deltas).await?;
        report.logs_changed += updates.len();
        Ok(messages)
    }

    /// Prices and debits the messages that became chargeable, vendor by vendor in id order.
    async fn charge(
        &self,
        conn: &mut PgConnection,
        messages: &mut [Message<'_>],
        report: &mut ApplyReport,
    ) -> Result<(), DeliveryError> {
        let campaigns: Vec<Uuid> = {
            let set: HashSet<Uuid> = messages
                .iter()
                .filter(|m| m.due.is_some() || !CounterDelta::of(&m.before, &m.after).is_zero())
                .filter_map(|m| m.log.campaign_id)
                .collect();
            let mut ids: Vec<Uuid> = set.into_iter().collect();
            ids.sort();
            ids
        };
        rows::lock_campaigns(conn, &campaigns).await?;

        let mut by_vendor: BTreeMap<Uuid, Vec<(usize, kloyst_pricing::Price)>> = BTreeMap::new();
        for (index, message) in messages.iter_mut().enumerate() {
            match message.due {
                None => {}
                Some(Charge::Free) => {
                    message.charged = Some(Charged::default());
                    message.after.mark_charged();
                    report.free += 1;
                }
                Some(Charge::Billable) => {
                    let Some(pricing) = message.after.pricing.clone() else {
                        continue;
                    };
                    let at = message.after.sent_at.unwrap_or(message.log.created_at);
                    let priced = self
                        .prices
                        .price(
                            message.log.vendor_id,
                            &pricing,
                            message.log.country.as_deref(),
                            at,
                        )
                        .await;
                    match priced {
                        Ok(price) if price.total > Decimal::ZERO => {
                            by_vendor
                                .entry(message.log.vendor_id)
                                .or_default()
                                .push((index, price));
                        }
                        Ok(price) => {
                            // A zero rate: nothing to debit, recorded like a free message.
                            message.charged = Some(charged_from(&price, None));
                            message.after.mark_charged();
                            report.free += 1;
                        }
                        Err(Unpriced::Failed(error)) => return Err(error.into()),
                        Err(Unpriced::Missing(reason)) => {
                            tracing::warn!(
                                wamid = %message.log.wa_message_id,
                                vendor.id = %message.log.vendor_id,
                                reason,
                                "a delivered billable message has no price; flagged UNPRICED"
                            );
                            message.after.add_flag(UNPRICED);
                            report.unpriced += 1;
                        }
                    }
                }
            }
        }
        if by_vendor.is_empty() {
            return Ok(());
        }
        let holds = campaign_holds(conn, messages, &by_vendor).await?;
        for (vendor, priced) in by_vendor {
            let debits: Vec<Debit> = priced
                .iter()
                .map(|(index, price)| {
                    let message = &messages[*index];
                    Debit {
                        reference: format!("debit:{}", message.log.wa_message_id),
                        amount: price.total,
                        hold_id: message.log.campaign_id.and_then(|c| holds.get(&c).copied()),
                        campaign_id: message.log.campaign_id,
                        wa_message_id: Some(message.log.wa_message_id.clone()),
                        metadata: metadata(&message.after, price),
                    }
                })
                .collect();
            match debit_vendor(conn, vendor, &debits).await? {
                VendorCharge::Posted(posted) => {
                    for ((index, price), posted) in priced.iter().zip(posted) {
                        let message = &mut messages[*index];
                        message.charged = Some(charged_from(price, Some(posted.transaction_id)));
                        message.after.mark_charged();
                        report.charged += 1;
                    }
                }
                VendorCharge::Refused(error) => {
                    tracing::warn!(
                        vendor.id = %vendor,
                        messages = priced.len(),
                        %error,
                        "the wallet refused delivered messages' charges; flagged CHARGE_REFUSED"
                    );
                    for (index, _) in &priced {
                        messages[*index].after.add_flag(CHARGE_REFUSED);
                        report.refused += 1;
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn record_metrics(
        &self,
        report: &ApplyReport,
        messages: &[Message<'_>],
        parked_now: Option<i64>,
    ) {
        metrics::counter!("delivery_statuses_applied_total").increment(report.applied as u64);
        metrics::counter!("delivery_statuses_dead_total").increment(report.dead as u64);
        if let Some(parked) = parked_now {
            metrics::gauge!("delivery_statuses_parked").set(parked as f64);
        }
        for (outcome, count) in [
            ("charged", report.charged),
            ("free", report.free),
            ("unpriced", report.unpriced),
            ("refused", report.refused),
        ] {
            if count > 0 {
                metrics::counter!("delivery_charges_total", "outcome" => outcome)
                    .increment(count as u64);
            }
        }
        let now = Utc::now();
        for message in messages {
            if message
                .charged
                .as_ref()
                .is_some_and(|c| c.ledger_transaction_id.is_some())
            {
                let latency = (now - message.received_at).to_std().unwrap_or_default();
                metrics::histogram!("delivery_charge_latency_seconds")
                    .record(latency.as_secs_f64());
            }
        }
    }
}

/// Folds one log's claimed statuses.
fn fold<'a>(log: &'a LogRow, events: &[&EventRow]) -> Message<'a> {
    let before = log.to_state();
    let mut after = before.clone();
    let parsed: Vec<StatusEvent> = events.iter().map(|e| e.to_event()).collect();
    let folded = after.fold(&parsed);
    let received_at = events
        .iter()
        .map(|e| e.received_at)
        .max()
        .unwrap_or(log.created_at);
    Message {
        log,
        before,
        after,
        received_at,
        due: folded.charge,
        charged: None,
    }
}

/// The hold of each campaign that has messages to debit.
async fn campaign_holds(
    conn: &mut PgConnection,
    messages: &[Message<'_>],
    by_vendor: &BTreeMap<Uuid, Vec<(usize, kloyst_pricing::Price)>>,
) -> Result<HashMap<Uuid, Uuid>, sqlx::Error> {
    let campaigns: Vec<Uuid> = by_vendor
        .values()
        .flatten()
        .filter_map(|(index, _)| messages[*index].log.campaign_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if campaigns.is_empty() {
        return Ok(HashMap::new());
    }
    let holds: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT campaign_id, id FROM wallet_holds WHERE campaign_id = ANY($1)")
            .bind(&campaigns)
            .fetch_all(conn)
            .await?;
    Ok(holds.into_iter().collect())
}

fn charged_from(price: &kloyst_pricing::Price, transaction: Option<i64>) -> Charged {
    Charged {
        market: Some(price.market.clone()),
        rate_card_id: Some(price.rate_card_id),
        meta_rate: Some(price.meta_rate),
        rate_currency: Some(price.rate_currency.clone()),
        fx_rate: Some(price.fx_rate),
        meta_cost: price.meta_cost,
        margin: price.margin,
        cost: price.total,
        ledger_transaction_id: transaction,
    }
}

/// The ledger row's metadata: what Meta said and how it was priced.
fn metadata(state: &MessageState, price: &kloyst_pricing::Price) -> serde_json::Value {
    let pricing = state.pricing.as_ref();
    serde_json::json!({
        "pricing_category": pricing.and_then(|p| p.category.as_deref()),
        "pricing_model": pricing.and_then(|p| p.model.as_deref()),
        "pricing_type": pricing.and_then(|p| p.kind.as_deref()),
        "conversation_id": pricing.and_then(|p| p.conversation_id.as_deref()),
        "template_category": state.template_category,
        "market": price.market,
        "rate_card_id": price.rate_card_id,
        "meta_rate": price.meta_rate,
        "rate_currency": price.rate_currency,
        "fx_rate": price.fx_rate,
        "meta_cost": price.meta_cost,
        "margin": price.margin,
    })
}
