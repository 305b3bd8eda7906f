//! What we send to the Cloud API and what it answers, plus the exact JSON bodies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::MetaError;

/// One message to one WhatsApp user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// E.164 digits (`919812345678`); sent with a leading `+`, because without it Meta
    /// prepends the business number's own country code.
    pub to: String,
    pub content: MessageContent,
    /// Echoed back in every status webhook of this message; lets a status be matched to a
    /// send whose HTTP answer was lost.
    pub biz_opaque_callback_data: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageContent {
    Template(TemplateMessage),
    /// Free-form text: only inside a customer service window (else Meta answers 131047).
    Text {
        body: String,
        preview_url: bool,
    },
}

/// An approved template with positional body parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateMessage {
    pub name: String,
    /// Meta's language code, e.g. `en_US`.
    pub language: String,
    /// The values of `{{1}}`..`{{n}}`, in order.
    pub body_parameters: Vec<String>,
}

/// Meta accepted the message; delivery is reported later by status webhooks.
#[derive(Clone, Debug, PartialEq)]
pub struct SendAccepted {
    pub wamid: String,
    /// The user's WhatsApp id, which may differ from the `to` we sent.
    pub wa_id: Option<String>,
    /// Template pacing status (`accepted`, `held_for_quality_assessment`, `paused`).
    pub message_status: Option<String>,
    /// The whole answer, for the message log.
    pub raw: Value,
}

/// A template submitted for review: `POST /{waba_id}/message_templates`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewTemplate {
    pub name: String,
    pub language: String,
    /// `authentication`, `marketing` or `utility`.
    pub category: String,
    /// Meta's `components` array as is (header, body with examples, footer, buttons).
    pub components: Value,
    /// `positional` (Meta's default when absent) or `named`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_format: Option<String>,
}

/// Meta's answer to a template creation; `category` may differ from the one requested.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CreatedTemplate {
    pub id: String,
    /// Usually `PENDING` (under review).
    pub status: String,
    #[serde(default)]
    pub category: Option<String>,
}

/// The body of `POST /{phone_number_id}/messages`.
#[derive(Serialize)]
pub(crate) struct SendBody<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    to: String,
    #[serde(flatten)]
    content: WireContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    biz_opaque_callback_data: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum WireContent<'a> {
    Template { template: WireTemplate<'a> },
    Text { text: WireText<'a> },
}

#[derive(Serialize)]
struct WireTemplate<'a> {
    name: &'a str,
    language: WireLanguage<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<WireComponent<'a>>,
}

#[derive(Serialize)]
struct WireLanguage<'a> {
    code: &'a str,
}

#[derive(Serialize)]
struct WireComponent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    parameters: Vec<WireParameter<'a>>,
}

#[derive(Serialize)]
struct WireParameter<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct WireText<'a> {
    preview_url: bool,
    body: &'a str,
}

impl<'a> SendBody<'a> {
    pub(crate) fn new(message: &'a OutgoingMessage) -> Self {
        let to = if message.to.starts_with('+') {
            message.to.clone()
        } else {
            format!("+{}", message.to)
        };
        let content = match &message.content {
            MessageContent::Template(template) => WireContent::Template {
                template: WireTemplate::new(template),
            },
            MessageContent::Text { body, preview_url } => WireContent::Text {
                text: WireText {
                    preview_url: *preview_url,
                    body,
                },
            },
        };
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to,
            content,
            biz_opaque_callback_data: message.biz_opaque_callback_data.as_deref(),
        }
    }
}

impl<'a> WireTemplate<'a> {
    fn new(template: &'a TemplateMessage) -> Self {
        let components = if template.body_parameters.is_empty() {
            Vec::new()
        } else {
            let parameters = template
                .body_parameters
                .iter()
                .map(|text| WireParameter { kind: "text", text })
                .collect();
            vec![WireComponent {
                kind: "body",
                parameters,
            }]
        };
        Self {
            name: &template.name,
            language: WireLanguage {
                code: &template.language,
            },
            components,
        }
    }
}

/// Reads a 2xx send answer; without `messages[0].id` it is a [`MetaError::Decode`].
#[allow(clippy::result_large_err)] // MetaError's shape is the crate's contract
pub(crate) fn parse_send_accepted(raw: Value) -> Result<SendAccepted, MetaError> {
    let message = raw.get("messages").and_then(|m| m.get(0));
    let wamid = message
        .and_then(|m| m.get("id"))
        .and_then(Value::as_str)
        .ok_or_else(|| MetaError::Decode("the answer has no messages[0].id".into()))?
        .to_owned();
    let message_status = message
        .and_then(|m| m.get("message_status"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let wa_id = raw
        .get("contacts")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("wa_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(SendAccepted {
        wamid,
        wa_id,
        message_status,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(parameters: &[&str]) -> OutgoingMessage {
        OutgoingMessage {
            to: "16505551234".into(),
            content: MessageContent::Template(TemplateMessage {
                name: "order_confirmation".into(),
                language: "en_US".into(),
                body_parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
            }),
            biz_opaque_callback_data: None,
        }
    }

    fn body(message: &OutgoingMessage) -> Value {
        serde_json::to_value(SendBody::new(message)).unwrap()
    }

    #[test]
    fn template_body_matches_metas_example() {
        // facts §2.1, verbatim.
        let expected = json!({
          "messaging_product": "whatsapp",
          "recipient_type": "individual",
          "to": "+16505551234",
          "type": "template",
          "template": {
            "name": "order_confirmation",
            "language": { "code": "en_US" },
            "components": [
              {
                "type": "body",
                "parameters": [
                  { "type": "text", "text": "Jessica" },
                  { "type": "text", "text": "SKBUP2-4CPIG9" }
                ]
              }
            ]
          }
        });
        assert_eq!(body(&template(&["Jessica", "SKBUP2-4CPIG9"])), expected);
    }

    #[test]
    fn template_without_parameters_omits_components() {
        let expected = json!({
          "messaging_product": "whatsapp",
          "recipient_type": "individual",
          "to": "+16505551234",
          "type": "template",
          "template": { "name": "order_confirmation", "language": { "code": "en_US" } }
        });
        assert_eq!(body(&template(&[])), expected);
    }

    #[test]
    fn text_body_with_callback_data_and_an_existing_plus() {
        let message = OutgoingMessage {
            to: "+919812345678".into(),
            content: MessageContent::Text {
                body: "Your order shipped".into(),
                preview_url: true,
            },
            biz_opaque_callback_data: Some("log:42".into()),
        };
        let expected = json!({
          "messaging_product": "whatsapp",
          "recipient_type": "individual",
          "to": "+919812345678",
          "type": "text",
          "text": { "preview_url": true, "body": "Your order shipped" },
          "biz_opaque_callback_data": "log:42"
        });
        assert_eq!(body(&message), expected);
    }

    #[test]
    fn success_envelope_is_parsed() {
        // facts §2.2, verbatim.
        let raw = json!({
          "messaging_product": "whatsapp",
          "contacts": [ { "input": "16505551234", "wa_id": "16505551234" } ],
          "messages": [ { "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJBRkJENzExMTRFRjk2NTI1OTEA", "message_status": "accepted" } ]
        });
        let accepted = parse_send_accepted(raw.clone()).unwrap();
        assert_eq!(
            accepted.wamid,
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJBRkJENzExMTRFRjk2NTI1OTEA"
        );
        assert_eq!(accepted.wa_id.as_deref(), Some("16505551234"));
        assert_eq!(accepted.message_status.as_deref(), Some("accepted"));
        assert_eq!(accepted.raw, raw);
    }

    #[test]
    fn success_without_contacts_or_status_still_has_a_wamid() {
        let accepted = parse_send_accepted(json!({"messages": [{"id": "wamid.X"}]})).unwrap();
        assert_eq!(accepted.wamid, "wamid.X");
        assert_eq!(accepted.wa_id, None);
        assert_eq!(accepted.message_status, None);
    }

    #[test]
    fn success_without_a_message_id_is_a_decode_error() {
        for raw in [
            json!({}),
            json!({"messages": []}),
            json!({"messages": [{}]}),
        ] {
            assert!(matches!(
                parse_send_accepted(raw),
                Err(MetaError::Decode(_))
            ));
        }
    }

    #[test]
    fn new_template_body_matches_metas_example() {
        let components = json!([{
            "type": "body",
            "text": "Hi {{1}}! Your order number is {{2}}. Thank you.",
            "example": { "body_text": [ [ "Pablo", "860198-230332" ] ] }
        }]);
        let template = NewTemplate {
            name: "order_confirmation".into(),
            language: "en_US".into(),
            category: "utility".into(),
            components: components.clone(),
            parameter_format: Some("positional".into()),
        };
        let expected = json!({
          "name": "order_confirmation",
          "language": "en_US",
          "category": "utility",
          "parameter_format": "positional",
          "components": components
        });
        assert_eq!(serde_json::to_value(&template).unwrap(), expected);
        let without_format = NewTemplate {
            parameter_format: None,
            ..template
        };
        let value = serde_json::to_value(&without_format).unwrap();
        assert!(value.get("parameter_format").is_none());
    }

    #[test]
    fn created_template_is_parsed() {
        let created: CreatedTemplate = serde_json::from_value(
            json!({ "id": "546151681022936", "status": "PENDING", "category": "UTILITY" }),
        )
        .unwrap();
        assert_eq!(
            created,
            CreatedTemplate {
                id: "546151681022936".into(),
                status: "PENDING".into(),
                category: Some("UTILITY".into()),
            }
        );
    }
}
