//! Webhook bodies in Meta's shapes (facts §1.4, §1.5, §1.7), built independently of
//! kloyst-meta's types so the simulator checks our parser rather than mirroring it.

use serde_json::{json, Map, Value};

/// Who the webhooks come from: `entry[].id` and `metadata`.
#[derive(Clone, Debug)]
pub struct Origin {
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
}

/// The `pricing` object of one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Pricing {
    pub billable: bool,
    /// `regular` or `free_customer_service`.
    pub kind: &'static str,
    /// Lower-case pricing category (`marketing`, `utility`, `service`, ...).
    pub category: String,
}

impl Pricing {
    pub fn for_template(category: String) -> Self {
        Self {
            billable: true,
            kind: "regular",
            category,
        }
    }

    pub fn for_service_message() -> Self {
        Self {
            billable: false,
            kind: "free_customer_service",
            category: "service".to_owned(),
        }
    }
}

/// What every status of one message shares.
#[derive(Clone, Debug)]
pub struct MessageFacts {
    pub wamid: String,
    pub recipient_id: String,
    pub pricing: Pricing,
    pub conversation_id: String,
    pub biz_opaque_callback_data: Option<String>,
}

/// A `failed` status's `errors[0]`.
#[derive(Clone, Debug)]
pub struct StatusError {
    pub code: i64,
    pub title: &'static str,
    pub details: &'static str,
}

pub const UNDELIVERABLE: StatusError = StatusError {
    code: 131026,
    title: "Message undeliverable",
    details: "Message Undeliverable.",
};

pub const ECOSYSTEM_ENGAGEMENT: StatusError = StatusError {
    code: 131049,
    title: "This message was not delivered to maintain healthy ecosystem engagement.",
    details:
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
};

const ERROR_CODES_HREF: &str = "/documentation/business-messaging/whatsapp/support/error-codes";

/// One element of `statuses[]`.
pub fn status(
    facts: &MessageFacts,
    status: &str,
    timestamp: i64,
    with_pricing: bool,
    error: Option<&StatusError>,
) -> Value {
    let mut s = Map::new();
    s.insert("id".into(), json!(facts.wamid));
    s.insert("status".into(), json!(status));
    s.insert("timestamp".into(), json!(timestamp.to_string()));
    s.insert("recipient_id".into(), json!(facts.recipient_id));
    if let Some(data) = &facts.biz_opaque_callback_data {
        s.insert("biz_opaque_callback_data".into(), json!(data));
    }
    if with_pricing {
        // Pre-v24 style: a conversation travels with the pricing; its expiry only on `sent`.
        let mut conversation = Map::new();
        conversation.insert("id".into(), json!(facts.conversation_id));
        if status == "sent" {
            let expires = timestamp + 24 * 3600;
            conversation.insert("expiration_timestamp".into(), json!(expires.to_string()));
        }
        conversation.insert("origin".into(), json!({"type": facts.pricing.category}));
        s.insert("conversation".into(), Value::Object(conversation));
        s.insert(
            "pricing".into(),
            json!({
                "billable": facts.pricing.billable,
                "pricing_model": "PMP",
                "type": facts.pricing.kind,
                "category": facts.pricing.category,
            }),
        );
    }
    if let Some(error) = error {
        s.insert(
            "errors".into(),
            json!([{
                "code": error.code,
                "title": error.title,
                "message": error.title,
                "error_data": {"details": error.details},
                "href": ERROR_CODES_HREF,
            }]),
        );
    }
    Value::Object(s)
}

/// A `messages`-field notification carrying `statuses`.
pub fn statuses_body(origin: &Origin, statuses: Vec<Value>) -> Value {
    messages_field(origin, "statuses", Value::Array(statuses), None)
}

/// An inbound message from a user, with the `contacts[]` Meta sends alongside it.
pub fn inbound_body(origin: &Origin, message: &InboundMessage, timestamp: i64) -> Value {
    let mut m = Map::new();
    m.insert("from".into(), json!(message.from));
    m.insert("id".into(), json!(message.wamid));
    m.insert("timestamp".into(), json!(timestamp.to_string()));
    match &message.content {
        InboundContent::Text(body) => {
            m.insert("type".into(), json!("text"));
            m.insert("text".into(), json!({"body": body}));
        }
        InboundContent::Button(text) => {
            m.insert("type".into(), json!("button"));
            m.insert("button".into(), json!({"payload": text, "text": text}));
        }
    }
    let contacts = json!([{"profile": {"name": message.profile_name}, "wa_id": message.from}]);
    messages_field(
        origin,
        "messages",
        json!([Value::Object(m)]),
        Some(contacts),
    )
}

pub struct InboundMessage {
    pub wamid: String,
    pub from: String,
    pub profile_name: String,
    pub content: InboundContent,
}

pub enum InboundContent {
    Text(String),
    Button(String),
}

fn messages_field(origin: &Origin, key: &str, items: Value, contacts: Option<Value>) -> Value {
    let mut value = Map::new();
    value.insert("messaging_product".into(), json!("whatsapp"));
    value.insert(
        "metadata".into(),
        json!({
            "display_phone_number": origin.display_phone_number,
            "phone_number_id": origin.phone_number_id,
        }),
    );
    if let Some(contacts) = contacts {
        value.insert("contacts".into(), contacts);
    }
    value.insert(key.into(), items);
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": origin.waba_id,
            "changes": [{"value": Value::Object(value), "field": "messages"}],
        }],
    })
}

/// What a `message_template_status_update` reports.
pub struct TemplateEvent<'a> {
    pub event: &'a str,
    pub template_id: u64,
    pub name: &'a str,
    pub language: &'a str,
    pub category: &'a str,
    pub reason: Option<&'a str>,
}

const INVALID_FORMAT_REASON: &str = "Your template has parameters placed next to each other \
    (like {{1}}{{2}}) without text or punctuation between them.";
const INVALID_FORMAT_RECOMMENDATION: &str = "Separate parameters with descriptive text and \
    ensure each parameter is clearly contextualized.";

pub fn template_status_body(origin: &Origin, event: &TemplateEvent<'_>, now: i64) -> Value {
    let reason = event.reason.unwrap_or(match event.event {
        "REJECTED" => "INVALID_FORMAT",
        _ => "NONE",
    });
    let mut value = Map::new();
    value.insert("event".into(), json!(event.event));
    // An integer here, unlike the string id of the create response.
    value.insert("message_template_id".into(), json!(event.template_id));
    value.insert("message_template_name".into(), json!(event.name));
    value.insert("message_template_language".into(), json!(event.language));
    value.insert("reason".into(), json!(reason));
    value.insert("message_template_category".into(), json!(event.category));
    if event.event == "REJECTED" && reason == "INVALID_FORMAT" {
        value.insert(
            "rejection_info".into(),
            json!({"reason": INVALID_FORMAT_REASON, "recommendation": INVALID_FORMAT_RECOMMENDATION}),
        );
    }
    match event.event {
        "DISABLED" => {
            let date = chrono::DateTime::from_timestamp(now, 0)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            value.insert("disable_info".into(), json!({"disable_date": date}));
        }
        "PAUSED" => {
            value.insert(
                "other_info".into(),
                json!({
                    "title": "FIRST_PAUSE",
                    "description": "Your template has been paused for 3 hours due to low quality.",
                }),
            );
        }
        _ => {}
    }
    json!({
        "entry": [{
            "id": origin.waba_id,
            "time": now,
            "changes": [{"value": Value::Object(value), "field": "message_template_status_update"}],
        }],
        "object": "whatsapp_business_account",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            waba_id: "102290129340398".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
        }
    }

    fn facts() -> MessageFacts {
        MessageFacts {
            wamid: "wamid.X".into(),
            recipient_id: "16505551234".into(),
            pricing: Pricing::for_template("marketing".into()),
            conversation_id: "72b14d6bd5407799e66f64d1b338e567".into(),
            biz_opaque_callback_data: None,
        }
    }

    #[test]
    fn sent_status_matches_metas_example() {
        let body = statuses_body(
            &origin(),
            vec![status(&facts(), "sent", 1750030073, true, None)],
        );
        let expected = json!({
          "object": "whatsapp_business_account",
          "entry": [{
            "id": "102290129340398",
            "changes": [{
              "value": {
                "messaging_product": "whatsapp",
                "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
                "statuses": [{
                  "id": "wamid.X",
                  "status": "sent",
                  "timestamp": "1750030073",
                  "recipient_id": "16505551234",
                  "conversation": {
                    "id": "72b14d6bd5407799e66f64d1b338e567",
                    "expiration_timestamp": "1750116473",
                    "origin": { "type": "marketing" }
                  },
                  "pricing": { "billable": true, "pricing_model": "PMP", "type": "regular", "category": "marketing" }
                }]
              },
              "field": "messages"
            }]
          }]
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn failed_status_carries_errors_and_no_pricing() {
        let s = status(&facts(), "failed", 1, false, Some(&ECOSYSTEM_ENGAGEMENT));
        assert_eq!(s["errors"][0]["code"], 131049);
        assert_eq!(s["errors"][0]["title"], s["errors"][0]["message"]);
        assert!(s.get("pricing").is_none());
    }

    #[test]
    fn template_rejection_has_rejection_info_and_integer_id() {
        let event = TemplateEvent {
            event: "REJECTED",
            template_id: 1689556908129835,
            name: "abandoned_cart",
            language: "en",
            category: "MARKETING",
            reason: None,
        };
        let body = template_status_body(&origin(), &event, 1751247548);
        let value = &body["entry"][0]["changes"][0]["value"];
        assert_eq!(value["message_template_id"], json!(1689556908129835u64));
        assert_eq!(value["reason"], "INVALID_FORMAT");
        assert!(value["rejection_info"]["recommendation"].is_string());
        assert_eq!(body["entry"][0]["time"], 1751247548);
    }
}
