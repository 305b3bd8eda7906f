//! The inbound pipeline for one `messages` change: route, log once, update consent.

use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::VendorId;
use kloyst_meta::webhook::{InboundMessage, MessagesValue};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::keywords::{consent_request, ConsentRequest};
use super::repo::{self, LockedContact, NewInboundLog};
use super::routing::{self, Sender};
use super::settings::InboundSettings;
use crate::MessagingError;

/// What happened to the messages of one change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InboundReport {
    /// Newly logged messages.
    pub recorded: usize,
    /// Messages whose wamid was already logged (Meta's redeliveries).
    pub duplicates: usize,
    /// Messages no vendor could be found for (or without a usable sender or id).
    pub unrouted: usize,
    /// Contacts opted out / back in by a keyword in this change.
    pub opted_out: usize,
    pub opted_in: usize,
}

/// Longer than any wamid Meta issues (~60 characters); anything longer is not one and would
/// not fit the unique index.
const MAX_WAMID_BYTES: usize = 255;
/// A WhatsApp profile name is at most a few dozen characters; cap what we copy.
const MAX_NAME_CHARS: usize = 200;
const UNKNOWN_TYPE: &str = "unknown";

/// Records the inbound `messages[]` of one change of WABA `waba_id`, read from webhook inbox
/// row `inbox_id`, on the caller's (system) transaction.
pub async fn record_inbound(
    conn: &mut PgConnection,
    settings: &InboundSettings,
    waba_id: &str,
    value: &MessagesValue,
    inbox_id: i64,
) -> Result<InboundReport, MessagingError> {
    let mut report = InboundReport::default();
    if value.messages.is_empty() {
        return Ok(report);
    }
    repo::tag_contact_changes(conn, inbox_id).await?;
    for message in &value.messages {
        match record_message(conn, settings, value, message, inbox_id).await? {
            Outcome::Unrouted => report.unrouted += 1,
            Outcome::Duplicate => report.duplicates += 1,
            Outcome::Recorded(change) => {
                report.recorded += 1;
                match change {
                    Some(ConsentChange::OptedOut) => report.opted_out += 1,
                    Some(ConsentChange::OptedIn) => report.opted_in += 1,
                    None => {}
                }
            }
        }
    }
    tracing::debug!(
        waba.id = waba_id,
        inbox.id = inbox_id,
        ?report,
        "inbound messages processed"
    );
    Ok(report)
}

enum Outcome {
    Unrouted,
    Duplicate,
    Recorded(Option<ConsentChange>),
}

enum ConsentChange {
    OptedOut,
    OptedIn,
}

async fn record_message(
    conn: &mut PgConnection,
    settings: &InboundSettings,
    value: &MessagesValue,
    message: &InboundMessage,
    inbox_id: i64,
) -> Result<Outcome, MessagingError> {
    let wamid = message.id.as_str();
    if wamid.is_empty() || wamid.len() > MAX_WAMID_BYTES {
        tracing::info!(
            inbox.id = inbox_id,
            "inbound message without a usable id left unrouted"
        );
        return Ok(Outcome::Unrouted);
    }
    let Some(sender) = routing::sender(message) else {
        tracing::info!(
            wamid,
            inbox.id = inbox_id,
            "inbound message without a usable sender left unrouted"
        );
        return Ok(Outcome::Unrouted);
    };
    // Checked first so that a redelivery touches nothing; the insert's ON CONFLICT below
    // settles a race with a concurrent delivery of the same message.
    if repo::wamid_logged(conn, wamid).await? {
        return Ok(Outcome::Duplicate);
    }
    let Some(vendor) = routing::owning_vendor(conn, settings, &sender).await? else {
        tracing::info!(
            wamid,
            inbox.id = inbox_id,
            "inbound message from a number no vendor has messaged left unrouted"
        );
        return Ok(Outcome::Unrouted);
    };
    let contact = match &sender {
        Sender::Number {
            mobile,
            country,
            wa_id,
        } => {
            let name = profile_name(value, wa_id);
            Some(repo::upsert_contact(conn, vendor, mobile, country.as_deref(), name).await?)
        }
        Sender::UserId(_) => None,
    };
    let log = NewInboundLog {
        vendor,
        message_type: &message_type(&message.kind),
        contact_id: contact.map(|c| c.id),
        phone_number_id: value.metadata.as_ref().map(|m| m.phone_number_id.as_str()),
        recipient: sender.recipient(),
        country: match &sender {
            Sender::Number { country, .. } => country.as_deref(),
            Sender::UserId(_) => None,
        },
        wamid,
        body: serde_json::to_value(message)?,
        received_at: message.timestamp.0,
    };
    if repo::insert_inbound_log(conn, &log).await?.is_none() {
        return Ok(Outcome::Duplicate);
    }
    let Some(request) = consent_request(settings, message.text()) else {
        return Ok(Outcome::Recorded(None));
    };
    let Some(contact) = contact else {
        tracing::info!(wamid, vendor.id = %vendor, "keyword from a sender known only by user id: no contact to change");
        return Ok(Outcome::Recorded(None));
    };
    let change = apply_consent(conn, vendor, contact, request, message, inbox_id).await?;
    Ok(Outcome::Recorded(change))
}

/// Applies a keyword unless consent was decided later than the message was sent.
async fn apply_consent(
    conn: &mut PgConnection,
    vendor: Uuid,
    contact: LockedContact,
    request: ConsentRequest<'_>,
    message: &InboundMessage,
    inbox_id: i64,
) -> Result<Option<ConsentChange>, MessagingError> {
    let at = message.timestamp.0;
    let wamid = message.id.as_str();
    // Meta's timestamps have second resolution: within one second the order of a STOP and a
    // START is unknowable, and the tie goes to opting out (never message someone who may
    // have asked us to stop).
    let is_opt_out = matches!(request, ConsentRequest::OptOut(_));
    if contact
        .opt_state_at
        .is_some_and(|decided| decided > at || (decided == at && !is_opt_out))
    {
        tracing::info!(wamid, contact.id = %contact.id, "keyword older than the contact's last consent decision ignored");
        return Ok(None);
    }
    let (action, keyword, change) = match request {
        ConsentRequest::OptOut(keyword) if !contact.opted_out => {
            let reason = format!("keyword {keyword}");
            repo::opt_out(conn, vendor, contact.id, at, &reason, wamid).await?;
            ("contact.opted_out", keyword, ConsentChange::OptedOut)
        }
        ConsentRequest::OptIn(keyword) if contact.opted_out => {
            repo::opt_in(conn, vendor, contact.id, at).await?;
            ("contact.opted_in", keyword, ConsentChange::OptedIn)
        }
        // Already in the requested state: only the decision time moves on.
        ConsentRequest::OptOut(_) | ConsentRequest::OptIn(_) => {
            repo::reaffirm_opt_state(conn, vendor, contact.id, at).await?;
            return Ok(None);
        }
    };
    let entry = AuditEntry {
        vendor_id: Some(VendorId::from_uuid(vendor)),
        actor: Actor::System,
        action,
        target_type: Some("contact"),
        target_id: Some(contact.id.to_string()),
        details: json!({
            "wamid": wamid,
            "keyword": keyword,
            "source": "INBOUND_KEYWORD",
            "message_at": at,
            "inbox_id": inbox_id,
        }),
    };
    kloyst_audit::record(conn, &entry, &RequestMeta::default()).await?;
    tracing::info!(wamid, vendor.id = %vendor, contact.id = %contact.id, action, "consent changed by keyword");
    Ok(Some(change))
}

/// Meta's `type`, lower-cased, if it fits `message_logs.message_type`; else `unknown`.
fn message_type(kind: &str) -> String {
    let kind = kind.trim().to_ascii_lowercase();
    let fits =
        (1..=32).contains(&kind.len()) && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if fits {
        kind
    } else {
        UNKNOWN_TYPE.to_owned()
    }
}

/// The sender's WhatsApp profile name: the `contacts[]` entry with their `wa_id`, or the only
/// entry when Meta sent one without it.
fn profile_name<'v>(value: &'v MessagesValue, wa_id: &str) -> Option<&'v str> {
    let profile = value
        .contacts
        .iter()
        .find(|c| c.wa_id.as_deref() == Some(wa_id))
        .or(match value.contacts.as_slice() {
            [only] if only.wa_id.is_none() => Some(only),
            _ => None,
        })?;
    let name = profile.profile.as_ref()?.name.as_deref()?.trim();
    if name.is_empty() {
        return None;
    }
    Some(match name.char_indices().nth(MAX_NAME_CHARS) {
        Some((end, _)) => &name[..end],
        None => name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_fit_the_column() {
        assert_eq!(message_type("text"), "text");
        assert_eq!(message_type("Interactive"), "interactive");
        assert_eq!(message_type("request_welcome"), "request_welcome");
        assert_eq!(message_type(""), "unknown");
        assert_eq!(message_type("image/png"), "unknown");
        assert_eq!(message_type("ünïcode"), "unknown");
        assert_eq!(message_type(&"a".repeat(33)), "unknown");
    }
}
