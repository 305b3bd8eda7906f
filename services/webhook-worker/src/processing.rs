//! What a stored webhook means, by source and (for Meta) by change field: delivery statuses
//! are gathered from every row of a processing batch and stored and applied together at its
//! end (`kloyst_delivery::ReceivedStatuses`), inbound messages recorded (with keyword
//! opt-outs), template reviews applied; Razorpay's payment events credit, fail or refund
//! (`kloyst_payments`). Everything happens in the batch's transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kloyst_delivery::{ReceivedStatuses, StatusApplier, StatusSource};
use kloyst_inbox::{ClaimedRow, HandlerFailure, InboxHandler, Processed, Source};
use kloyst_messaging::{record_inbound, InboundSettings};
use kloyst_meta::webhook::{ChangeKind, Notification};
use kloyst_payments::signature::EVENT_ID_HEADER;
use kloyst_payments::{apply_payment_event, ApplyError, PaymentEvent};
use kloyst_templates::{apply_status_update, TemplateStatusOutcome};
use serde_json::Value;
use sqlx::PgConnection;

/// `object` of every WhatsApp Business notification.
const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// The processors of every webhook source.
pub struct WebhookProcessing {
    pub inbound: InboundSettings,
    /// Stores and applies each batch's delivery statuses (and, on its own, retries the
    /// parked ones).
    pub applier: Arc<StatusApplier>,
}

impl InboxHandler for WebhookProcessing {
    type Deferred = ReceivedStatuses;

    async fn handle(
        &self,
        conn: &mut PgConnection,
        row: &ClaimedRow,
    ) -> Result<Processed<ReceivedStatuses>, HandlerFailure> {
        match Source::parse(&row.source) {
            Some(Source::Meta) => self.meta(conn, row).await,
            Some(Source::Razorpay) => payment(conn, row).await,
            None => Err(HandlerFailure::permanent(format!(
                "no processor for {} webhooks",
                row.source
            ))),
        }
    }

    /// The batch's statuses, stored and applied in one go.
    async fn finish(
        &self,
        conn: &mut PgConnection,
        deferred: Vec<ReceivedStatuses>,
    ) -> Result<(), HandlerFailure> {
        let mut statuses = ReceivedStatuses::default();
        for row in deferred {
            statuses.append(row);
        }
        if statuses.is_empty() {
            return Ok(());
        }
        let report = self
            .applier
            .apply_received(conn, statuses)
            .await
            .map_err(HandlerFailure::retry)?;
        metrics::counter!("webhook_statuses_stored_total").increment(report.new);
        metrics::counter!("webhook_statuses_duplicate_total").increment(report.duplicates);
        Ok(())
    }
}

impl WebhookProcessing {
    async fn meta(
        &self,
        conn: &mut PgConnection,
        row: &ClaimedRow,
    ) -> Result<Processed<ReceivedStatuses>, HandlerFailure> {
        // Retried like any failure, not dead-lettered at once: the bytes never change, but a
        // parser fix deployed within the retry window then applies them without a replay.
        let parsed = parse_off_runtime(&row.raw_body)
            .await?
            .map_err(|error| HandlerFailure::retry(format!("not a Meta notification: {error}")))?;
        let event_type = Some(parsed.fields).filter(|f| !f.is_empty());
        let with_type = |failure: HandlerFailure| failure.with_event_type(event_type.clone());
        if parsed.object != WHATSAPP_OBJECT {
            return Err(with_type(HandlerFailure::retry(format!(
                "unexpected object {:?}",
                parsed.object
            ))));
        }
        let mut statuses = ReceivedStatuses::default();
        for change in parsed.changes {
            let entry_id = change.waba_id;
            let event_time = change.event_time;
            let kind = change.kind.map_err(|error| {
                with_type(HandlerFailure::retry(format!(
                    "change {:?} of entry {entry_id} does not parse: {error}",
                    change.field
                )))
            })?;
            match kind {
                ChangeKind::Messages(mut value) => {
                    let source = StatusSource {
                        inbox_id: row.id,
                        waba_id: &entry_id,
                        phone_number_id: value
                            .metadata
                            .as_ref()
                            .map(|m| m.phone_number_id.as_str()),
                    };
                    let parsed = std::mem::take(&mut value.statuses);
                    statuses.push(source, row.received_at, parsed, change.raw_statuses);
                    if !value.messages.is_empty() {
                        let report = record_inbound(conn, &self.inbound, &entry_id, &value, row.id)
                            .await
                            .map_err(|e| with_type(HandlerFailure::retry(e)))?;
                        tracing::debug!(inbox_id = row.id, ?report, "inbound messages");
                    }
                    for error in &value.errors {
                        // Account-level problems (throughput, policy): operators must see them.
                        tracing::warn!(
                            waba_id = %entry_id,
                            code = error.code,
                            title = error.title.as_deref().unwrap_or_default(),
                            "Meta reported an account-level error"
                        );
                        metrics::counter!("meta_system_errors_total").increment(1);
                    }
                }
                ChangeKind::TemplateStatus(update) => {
                    match apply_status_update(conn, &entry_id, event_time, &update)
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
        Ok(Processed {
            event_type,
            deferred: Some(statuses).filter(|s| !s.is_empty()),
        })
    }
}

/// A Meta notification, parsed.
struct ParsedNotification {
    object: String,
    /// The distinct change fields (for `webhook_inbox.event_type`).
    fields: String,
    changes: Vec<ParsedChange>,
}

/// One change of a notification, with its entry's facts.
struct ParsedChange {
    waba_id: String,
    event_time: Option<DateTime<Utc>>,
    field: String,
    kind: Result<ChangeKind, serde_json::Error>,
    /// `value.statuses` exactly as Meta sent it (kept as each status's payload).
    raw_statuses: Option<Vec<Value>>,
}

/// Parses a body on the blocking pool: Meta posts up to 1,000 statuses (~250 KB) at once,
/// several milliseconds of parsing that would otherwise hold a runtime thread the intake's
/// acknowledgements are waiting for.
async fn parse_off_runtime(
    body: &[u8],
) -> Result<Result<ParsedNotification, serde_json::Error>, HandlerFailure> {
    let body = body.to_vec();
    tokio::task::spawn_blocking(move || parse_notification(&body))
        .await
        .map_err(|error| HandlerFailure::retry(format!("the parsing task failed: {error}")))
}

fn parse_notification(body: &[u8]) -> Result<ParsedNotification, serde_json::Error> {
    let notification = Notification::parse(body)?;
    let fields = notification.fields();
    let mut changes = Vec::new();
    for entry in notification.entry {
        let event_time = entry.time.and_then(|t| DateTime::from_timestamp(t, 0));
        for mut change in entry.changes {
            let kind = change.parse();
            let raw_statuses = match change.value.get_mut("statuses").map(Value::take) {
                Some(Value::Array(raw)) => Some(raw),
                _ => None,
            };
            changes.push(ParsedChange {
                waba_id: entry.id.clone(),
                event_time,
                field: change.field,
                kind,
                raw_statuses,
            });
        }
    }
    Ok(ParsedNotification {
        object: notification.object,
        fields,
        changes,
    })
}

/// A Razorpay event: credited, failed or refunded exactly once (see `kloyst_payments`).
async fn payment(
    conn: &mut PgConnection,
    row: &ClaimedRow,
) -> Result<Processed<ReceivedStatuses>, HandlerFailure> {
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
    Ok(Processed::done(event_type))
}
