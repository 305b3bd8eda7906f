//! What a stored webhook means, by source and (for Meta) by change field: statuses are stored
//! for the delivery applier, inbound messages recorded (with keyword opt-outs), template
//! reviews applied; Razorpay's payment events credit, fail or refund (`kloyst_payments`).
//! Everything of one inbox row happens in the row's transaction.

use std::sync::Arc;

use kloyst_delivery::{store_statuses, StatusSource};
use kloyst_inbox::{ClaimedRow, HandlerFailure, InboxHandler, Processed, Source};
use kloyst_messaging::{record_inbound, InboundSettings};
use kloyst_meta::webhook::{ChangeKind, Notification};
use kloyst_payments::signature::EVENT_ID_HEADER;
use kloyst_payments::{apply_payment_event, ApplyError, PaymentEvent};
use kloyst_templates::{apply_status_update, TemplateStatusOutcome};
use sqlx::PgConnection;
use tokio::sync::Notify;

/// `object` of every WhatsApp Business notification.
const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// The processors of every webhook source.
pub struct WebhookProcessing {
    pub inbound: InboundSettings,
    /// Woken when a row stored new statuses, so the status applier picks them up without
    /// waiting for its poll (it runs them once the inbox batch has committed).
    pub statuses_stored: Arc<Notify>,
}

impl InboxHandler for WebhookProcessing {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        row: &ClaimedRow,
    ) -> Result<Processed, HandlerFailure> {
        match Source::parse(&row.source) {
            Some(Source::Meta) => self.meta(conn, row).await,
            Some(Source::Razorpay) => payment(conn, row).await,
            None => Err(HandlerFailure::permanent(format!(
                "no processor for {} webhooks",
                row.source
            ))),
        }
    }
}

impl WebhookProcessing {
    async fn meta(
        &self,
        conn: &mut PgConnection,
        row: &ClaimedRow,
    ) -> Result<Processed, HandlerFailure> {
        // Retried like any failure, not dead-lettered at once: the bytes never change, but a
        // parser fix deployed within the retry window then applies them without a replay.
        let notification = Notification::parse(&row.raw_body)
            .map_err(|error| HandlerFailure::retry(format!("not a Meta notification: {error}")))?;
        let event_type = Some(notification.fields()).filter(|f| !f.is_empty());
        let with_type = |failure: HandlerFailure| failure.with_event_type(event_type.clone());
        if notification.object != WHATSAPP_OBJECT {
            return Err(with_type(HandlerFailure::retry(format!(
                "unexpected object {:?}",
                notification.object
            ))));
        }
        for entry in &notification.entry {
            let event_time = entry
                .time
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
            for change in &entry.changes {
                let kind = change.parse().map_err(|error| {
                    with_type(HandlerFailure::retry(format!(
                        "change {:?} of entry {} does not parse: {error}",
                        change.field, entry.id
                    )))
                })?;
                match kind {
                    ChangeKind::Messages(value) => {
                        let source = StatusSource {
                            inbox_id: row.id,
                            waba_id: &entry.id,
                            phone_number_id: value
                                .metadata
                                .as_ref()
                                .map(|m| m.phone_number_id.as_str()),
                        };
                        let raw = change
                            .value
                            .get("statuses")
                            .and_then(|s| s.as_array())
                            .map(Vec::as_slice);
                        let stored = store_statuses(conn, source, &value.statuses, raw)
                            .await
                            .map_err(|e| with_type(e.into()))?;
                        metrics::counter!("webhook_statuses_stored_total").increment(stored.new);
                        if stored.new > 0 {
                            self.statuses_stored.notify_one();
                        }
                        metrics::counter!("webhook_statuses_duplicate_total")
                            .increment(stored.duplicates);
                        if !value.messages.is_empty() {
                            let report =
                                record_inbound(conn, &self.inbound, &entry.id, &value, row.id)
                                    .await
                                    .map_err(|e| with_type(HandlerFailure::retry(e)))?;
                            tracing::debug!(inbox_id = row.id, ?report, "inbound messages");
                        }
                        for error in &value.errors {
                            // Account-level problems (throughput, policy): operators must see them.
                            tracing::warn!(
                                waba_id = %entry.id,
                                code = error.code,
                                title = error.title.as_deref().unwrap_or_default(),
                                "Meta reported an account-level error"
                            );
                            metrics::counter!("meta_system_errors_total").increment(1);
                        }
                    }
                    ChangeKind::TemplateStatus(update) => {
                        match apply_status_update(conn, &entry.id, event_time, &update)
                            .await
                            .map_err(|e| with_type(HandlerFailure::retry(e)))?
                        {
                            TemplateStatusOutcome::UnknownTemplate => {
                                // The submitter may not have stored Meta's id yet: retried, and
                                // dead-lettered if it never appears.
                                return Err(with_type(HandlerFailure::retry(format!(
                                    "template {} ({:?}) is not known (yet)",
                                    update.message_template_id, update.message_template_name
                                ))));
                            }
                            outcome => {
                                tracing::info!(inbox_id = row.id, ?outcome, "template status");
                            }
                        }
                    }
                    ChangeKind::Other(field) => {
                        tracing::debug!(inbox_id = row.id, field, "change field not processed");
                        metrics::counter!("webhook_changes_ignored_total", "field" => field)
                            .increment(1);
                    }
                }
            }
        }
        Ok(Processed { event_type })
    }
}

/// A Razorpay event: credited, failed or refunded exactly once (see `kloyst_payments`).
async fn payment(conn: &mut PgConnection, row: &ClaimedRow) -> Result<Processed, HandlerFailure> {
    // Retried, not dead-lettered at once: see the same choice for Meta above.
    let event = PaymentEvent::parse(&row.raw_body).map_err(HandlerFailure::retry)?;
    let event_type = Some(event.event.clone());
    let event_id = row.headers.get(EVENT_ID_HEADER).and_then(|v| v.as_str());
    let outcome = apply_payment_event(conn, &event, event_id)
        .await
        .map_err(|error| {
            let failure = match error {
                ApplyError::Permanent(reason) => HandlerFailure::permanent(reason),
                retry => HandlerFailure::retry(retry),
            };
            failure.with_event_type(event_type.clone())
        })?;
    tracing::info!(inbox_id = row.id, event_id, ?outcome, "payment event");
    Ok(Processed { event_type })
}
