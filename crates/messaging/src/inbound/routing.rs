//! Who sent a message, and which vendor's conversation it belongs to.
//!
//! Under the shared WABA every vendor sends from the same numbers, so the number a customer
//! writes to says nothing about the vendor: the conversation belongs to the vendor that last
//! messaged that customer, else to the configured default vendor.

use kloyst_contacts::phone::{self, Region};
use kloyst_meta::webhook::InboundMessage;
use sqlx::PgConnection;
use uuid::Uuid;

use super::repo;
use super::settings::InboundSettings;

/// The longest `message_logs.recipient` (a business-scoped user id is stored there when the
/// phone number is hidden).
const MAX_RECIPIENT_CHARS: usize = 64;

/// The customer who sent a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sender {
    /// Known by phone number.
    Number {
        /// Canonical E.164 digits as contacts store them (an older Brazilian `wa_id` without
        /// the mobile 9 becomes the current number).
        mobile: String,
        country: Option<String>,
        /// The digits as Meta sent them, when they differ from `mobile`.
        wa_id: String,
    },
    /// Known only by a business-scoped user id (WhatsApp usernames): no contact can be
    /// keyed on it, and no outbound message was ever addressed to it.
    UserId(String),
}

impl Sender {
    /// What `message_logs.recipient` holds for this sender.
    pub(crate) fn recipient(&self) -> &str {
        match self {
            Self::Number { mobile, .. } => mobile,
            Self::UserId(id) => id,
        }
    }
}

/// The sender of `message`, or `None` when Meta named neither a usable number nor a user id.
pub(crate) fn sender(message: &InboundMessage) -> Option<Sender> {
    if let Some(number) = message.from.as_deref().and_then(number) {
        return Some(number);
    }
    let user_id = message.from_user_id.as_deref()?.trim();
    let usable = !user_id.is_empty() && user_id.chars().count() <= MAX_RECIPIENT_CHARS;
    usable.then(|| Sender::UserId(user_id.to_owned()))
}

fn number(from: &str) -> Option<Sender> {
    let digits = from.trim().trim_start_matches('+');
    if !is_e164_digits(digits) {
        return None;
    }
    // `from` carries its country code, so the default region never applies.
    match phone::normalize(&format!("+{digits}"), Region::US) {
        Ok(normalized) => Some(Sender::Number {
            mobile: normalized.mobile,
            country: normalized.country,
            wa_id: digits.to_owned(),
        }),
        // A number WhatsApp delivered from is reachable, whatever libphonenumber thinks
        // of it (landlines run WhatsApp Business): keep Meta's digits.
        Err(_) => Some(Sender::Number {
            mobile: digits.to_owned(),
            country: None,
            wa_id: digits.to_owned(),
        }),
    }
}

/// The shape `contacts.mobile` requires: `^[1-9][0-9]{6,14}$`.
fn is_e164_digits(s: &str) -> bool {
    let bytes = s.as_bytes();
    (7..=15).contains(&bytes.len()) && bytes[0] != b'0' && bytes.iter().all(|b| b.is_ascii_digit())
}

/// The vendor whose conversation the message belongs to, or `None` (unrouted).
pub(crate) async fn owning_vendor(
    conn: &mut PgConnection,
    settings: &InboundSettings,
    sender: &Sender,
) -> Result<Option<Uuid>, sqlx::Error> {
    if let Sender::Number { mobile, wa_id, .. } = sender {
        if let Some(vendor) = repo::last_outbound_vendor(conn, mobile, wa_id).await? {
            return Ok(Some(vendor));
        }
    }
    Ok(settings.default_vendor_id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(from: Option<&str>, user_id: Option<&str>) -> InboundMessage {
        serde_json::from_value(json!({
            "id": "wamid.1", "from": from, "from_user_id": user_id,
            "timestamp": "1749416383", "type": "text", "text": {"body": "hi"}
        }))
        .unwrap()
    }

    #[test]
    fn numbers_are_canonical_digits() {
        let s = sender(&message(Some("919876543210"), None)).unwrap();
        assert_eq!(
            s,
            Sender::Number {
                mobile: "919876543210".into(),
                country: Some("IN".into()),
                wa_id: "919876543210".into()
            }
        );
        // An old Brazilian wa_id without the ninth digit.
        let s = sender(&message(Some("551187654321"), None)).unwrap();
        assert_eq!(s.recipient(), "5511987654321");
        // A landline running WhatsApp Business keeps Meta's digits.
        let s = sender(&message(Some("912345678901"), None)).unwrap();
        assert_eq!(s.recipient(), "912345678901");
    }

    #[test]
    fn user_ids_and_garbage() {
        assert_eq!(
            sender(&message(None, Some("IN.13491208655302741918"))),
            Some(Sender::UserId("IN.13491208655302741918".into()))
        );
        // An unusable `from` falls back to the user id.
        assert_eq!(
            sender(&message(Some("not-a-number"), Some("US.abc"))),
            Some(Sender::UserId("US.abc".into()))
        );
        assert_eq!(sender(&message(Some("0123"), None)), None);
        assert_eq!(sender(&message(None, Some(&"x".repeat(65)))), None);
        assert_eq!(sender(&message(None, Some("  "))), None);
        assert_eq!(sender(&message(None, None)), None);
    }
}
