//! Webhook notifications as Meta posts them: `{object, entry: [{id, time?, changes: [{field,
//! value}]}]}`. A `messages` change carries `statuses`, inbound `messages` and system `errors`;
//! a `message_template_status_update` change carries one template event.
//!
//! Parsing is lenient where Meta is inconsistent (timestamps as strings or integers, template
//! ids as integers, `authentication-international` vs `_international`) and keeps unknown
//! fields out of the way, so a new field Meta adds never dead-letters a webhook.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// `field` of a change that carries statuses and inbound messages.
pub const FIELD_MESSAGES: &str = "messages";
/// `field` of a change that carries a template's review or quality event.
pub const FIELD_TEMPLATE_STATUS: &str = "message_template_status_update";

/// One POST's body.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Notification {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

impl Notification {
    /// Parses a raw body (already signature-checked).
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The changes of every entry, with the WABA id of their entry.
    pub fn changes(&self) -> impl Iterator<Item = (&str, &Change)> {
        self.entry
            .iter()
            .flat_map(|entry| entry.changes.iter().map(move |c| (entry.id.as_str(), c)))
    }

    /// The distinct change fields, comma-separated (for `webhook_inbox.event_type`).
    pub fn fields(&self) -> String {
        let mut fields: Vec<&str> = self.changes().map(|(_, c)| c.field.as_str()).collect();
        fields.sort_unstable();
        fields.dedup();
        fields.join(",")
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Entry {
    /// The WhatsApp Business Account id.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Change {
    pub field: String,
    pub value: Value,
}

/// A change, typed by its field.
#[derive(Clone, Debug)]
pub enum ChangeKind {
    Messages(Box<MessagesValue>),
    TemplateStatus(Box<TemplateStatusUpdate>),
    /// A field Kloyst does not process (account_update, quality updates, …).
    Other(String),
}

impl Change {
    pub fn parse(&self) -> Result<ChangeKind, serde_json::Error> {
        Ok(match self.field.as_str() {
            FIELD_MESSAGES => {
                ChangeKind::Messages(Box::new(MessagesValue::deserialize(&self.value)?))
            }
            FIELD_TEMPLATE_STATUS => ChangeKind::TemplateStatus(Box::new(
                TemplateStatusUpdate::deserialize(&self.value)?,
            )),
            other => ChangeKind::Other(other.to_owned()),
        })
    }
}

/// The value of a `messages` change.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct MessagesValue {
    #[serde(default)]
    pub messaging_product: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub contacts: Vec<ContactProfile>,
    #[serde(default)]
    pub messages: Vec<InboundMessage>,
    #[serde(default)]
    pub statuses: Vec<StatusUpdate>,
    /// System-level errors, not tied to one message.
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
}

/// Our number the change concerns.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Metadata {
    #[serde(default)]
    pub display_phone_number: Option<String>,
    pub phone_number_id: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ContactProfile {
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub profile: Option<Profile>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Profile {
    #[serde(default)]
    pub name: Option<String>,
}

/// The delivery state a status reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
    /// First play of a voice message.
    Played,
    /// A value Meta added after this code was written, kept as sent.
    Other(String),
}

impl DeliveryStatus {
    /// As stored (`SENT`, `DELIVERED`, …).
    pub fn as_upper(&self) -> String {
        match self {
            Self::Sent => "SENT".into(),
            Self::Delivered => "DELIVERED".into(),
            Self::Read => "READ".into(),
            Self::Failed => "FAILED".into(),
            Self::Played => "PLAYED".into(),
            Self::Other(raw) => raw
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect(),
        }
    }

    fn as_wire(&self) -> &str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Played => "played",
            Self::Other(raw) => raw,
        }
    }
}

impl<'de> Deserialize<'de> for DeliveryStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(match raw.to_ascii_lowercase().as_str() {
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "failed" => Self::Failed,
            "played" => Self::Played,
            _ => Self::Other(raw),
        })
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_wire())
    }
}

/// One entry of `statuses[]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct StatusUpdate {
    /// The wamid of the message the status is about.
    pub id: String,
    pub status: DeliveryStatus,
    pub timestamp: UnixTime,
    #[serde(default)]
    pub recipient_id: Option<String>,
    /// Business-scoped user id, when the phone number is hidden (usernames, 2026).
    #[serde(default)]
    pub recipient_user_id: Option<String>,
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    pub conversation: Option<Conversation>,
    #[serde(default)]
    pub pricing: Option<Pricing>,
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Conversation {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub expiration_timestamp: Option<UnixTime>,
    #[serde(default)]
    pub origin: Option<ConversationOrigin>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ConversationOrigin {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// `pricing` of a status: PMP since 2025-07-01, CBP before.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Pricing {
    /// Deprecated by Meta in favour of `type` + `category`, still sent.
    #[serde(default)]
    pub billable: Option<bool>,
    #[serde(default)]
    pub pricing_model: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point` (PMP only).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl Pricing {
    /// The category upper-cased with `-` as `_`: Meta spells
    /// `authentication-international` both ways.
    pub fn normalized_category(&self) -> Option<String> {
        self.category
            .as_deref()
            .map(|c| c.trim().to_ascii_uppercase().replace('-', "_"))
    }
}

/// An error object, as in `statuses[].errors[]`, `messages[].errors[]` and `value.errors[]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorDetail {
    pub code: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
    #[serde(default)]
    pub href: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

/// One entry of `messages[]`: a message a customer sent us.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct InboundMessage {
    /// The wamid.
    pub id: String,
    /// The sender's number (digits); absent for users known only by a business-scoped id.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub from_user_id: Option<String>,
    pub timestamp: UnixTime,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<TextBody>,
    /// A quick-reply button press (template buttons).
    #[serde(default)]
    pub button: Option<ButtonReply>,
    #[serde(default)]
    pub interactive: Option<Value>,
    #[serde(default)]
    pub context: Option<Value>,
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
    /// Everything else Meta sent (`image`, `location`, `document`, …), kept so a stored
    /// message is the message as received.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl InboundMessage {
    /// The words the customer sent, where there are any: a text's body, a button's text.
    pub fn text(&self) -> Option<&str> {
        if let Some(text) = &self.text {
            return Some(text.body.as_str());
        }
        if let Some(button) = &self.button {
            return button.text.as_deref().or(button.payload.as_deref());
        }
        self.interactive.as_ref().and_then(|interactive| {
            ["button_reply", "list_reply"]
                .iter()
                .find_map(|kind| interactive.get(kind)?.get("title")?.as_str())
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TextBody {
    pub body: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ButtonReply {
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// The value of a `message_template_status_update` change.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TemplateStatusUpdate {
    /// APPROVED, REJECTED, PAUSED, DISABLED, REINSTATED, …
    pub event: String,
    /// An integer in webhooks, a string in API responses: kept as its digits.
    #[serde(deserialize_with = "id_string")]
    pub message_template_id: String,
    #[serde(default)]
    pub message_template_name: Option<String>,
    #[serde(default)]
    pub message_template_language: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message_template_category: Option<String>,
    #[serde(default)]
    pub rejection_info: Option<Value>,
    #[serde(default)]
    pub other_info: Option<Value>,
    #[serde(default)]
    pub disable_info: Option<Value>,
}

fn id_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) if !s.is_empty() => Ok(s),
        Value::Number(n) if n.is_u64() => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected an id (digits), got {other}"
        ))),
    }
}

/// A Unix time in seconds, which Meta sends as a string (`"1750030073"`) in most places and
/// as a number in others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for UnixTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seconds = match Value::deserialize(deserializer)? {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        seconds
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .map(UnixTime)
            .ok_or_else(|| serde::de::Error::custom("expected a Unix time in seconds"))
    }
}

impl Serialize for UnixTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.timestamp().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(body: &str) -> MessagesValue {
        let notification = Notification::parse(body.as_bytes()).unwrap();
        let (_, change) = notification.changes().next().unwrap();
        match change.parse().unwrap() {
            ChangeKind::Messages(value) => *value,
            other => panic!("expected messages, got {other:?}"),
        }
    }

    #[test]
    fn a_pmp_sent_status_parses() {
        let value = messages(
            r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
            "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
            "statuses":[{"id":"wamid.HBgL","status":"sent","timestamp":"1750030073","recipient_id":"16505551234",
              "conversation":{"id":"72b1","expiration_timestamp":"1750116480","origin":{"type":"marketing"}},
              "pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}}]},
            "field":"messages"}]}]}"#,
        );
        let status = &value.statuses[0];
        assert_eq!(status.status, DeliveryStatus::Sent);
        assert_eq!(status.timestamp.0.timestamp(), 1_750_030_073);
        let pricing = status.pricing.as_ref().unwrap();
        assert_eq!(pricing.kind.as_deref(), Some("regular"));
        assert_eq!(pricing.normalized_category().as_deref(), Some("MARKETING"));
        assert_eq!(value.metadata.unwrap().phone_number_id, "106540352242922");
    }

    #[test]
    fn a_failed_status_keeps_its_errors_and_unknown_statuses_survive() {
        let value = messages(
            r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "statuses":[{"id":"wamid.A","status":"failed","timestamp":1751142888,"recipient_id":"1650",
              "errors":[{"code":131049,"title":"t","message":"m","error_data":{"details":"d"}}]},
              {"id":"wamid.B","status":"deleted","timestamp":"1751142889","some_new_field":1}]}}]}]}"#,
        );
        assert_eq!(value.statuses[0].errors[0].code, 131_049);
        assert_eq!(
            value.statuses[1].status,
            DeliveryStatus::Other("deleted".into())
        );
        assert_eq!(value.statuses[1].status.as_upper(), "DELETED");
    }

    #[test]
    fn both_spellings_of_authentication_international_normalise_alike() {
        for category in [
            "authentication-international",
            "authentication_international",
        ] {
            let pricing = Pricing {
                billable: Some(true),
                pricing_model: Some("PMP".into()),
                category: Some(category.into()),
                kind: Some("regular".into()),
            };
            assert_eq!(
                pricing.normalized_category().as_deref(),
                Some("AUTHENTICATION_INTERNATIONAL")
            );
        }
    }

    #[test]
    fn inbound_text_and_button_replies_give_their_words() {
        let value = messages(
            r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "metadata":{"phone_number_id":"106540352242922"},
            "contacts":[{"profile":{"name":"Sheena"},"wa_id":"16505551234"}],
            "messages":[{"from":"16505551234","id":"wamid.X","timestamp":"1749416383","type":"text","text":{"body":"STOP"}},
                        {"from":"16505551234","id":"wamid.Y","timestamp":"1749416384","type":"button","button":{"payload":"p","text":"Unsubscribe"}}]}}]}]}"#,
        );
        assert_eq!(value.messages[0].text(), Some("STOP"));
        assert_eq!(value.messages[1].text(), Some("Unsubscribe"));
        assert_eq!(
            value.contacts[0].profile.as_ref().unwrap().name.as_deref(),
            Some("Sheena")
        );
    }

    #[test]
    fn a_template_status_update_with_an_integer_id_parses() {
        let notification = Notification::parse(
            br#"{"entry":[{"id":"102290129340398","time":1751247548,"changes":[{"value":{
            "event":"REJECTED","message_template_id":1689556908129835,"message_template_name":"abandoned_cart",
            "message_template_language":"en","reason":"INVALID_FORMAT","message_template_category":"MARKETING",
            "rejection_info":{"reason":"r","recommendation":"s"}},
            "field":"message_template_status_update"}]}],"object":"whatsapp_business_account"}"#,
        )
        .unwrap();
        assert_eq!(notification.fields(), "message_template_status_update");
        let (waba, change) = notification.changes().next().unwrap();
        assert_eq!(waba, "102290129340398");
        let ChangeKind::TemplateStatus(update) = change.parse().unwrap() else {
            panic!("expected a template status update");
        };
        assert_eq!(update.message_template_id, "1689556908129835");
        assert_eq!(update.reason.as_deref(), Some("INVALID_FORMAT"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Notification::parse(b"{not json").is_err());
        assert!(Notification::parse(b"[]").is_err());
        let bad_status = Notification::parse(
            br#"{"object":"x","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"w","status":"sent","timestamp":"soon"}]}}]}]}"#,
        )
        .unwrap();
        let (_, change) = bad_status.changes().next().unwrap();
        assert!(change.parse().is_err());
    }
}
