//! `POST /{version}/{phone_number_id}/messages`: Meta's checks, in Meta's order, then accept.

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use serde_json::{json, Value};

use crate::graph_error::GraphError;
use crate::ids;
use crate::lifecycle;
use crate::state::{SendRecord, SimState};
use crate::sync::lock;
use crate::webhooks::payload::{MessageFacts, Pricing};

/// Category billed when an unknown template is accepted (`accept_unknown_templates`).
const UNKNOWN_TEMPLATE_CATEGORY: &str = "marketing";

/// A send request, parsed and checked.
#[derive(Debug)]
struct SendRequest {
    to: String,
    wa_id: String,
    content: Content,
    biz_opaque_callback_data: Option<String>,
}

#[derive(Debug)]
enum Content {
    Text,
    Template {
        name: String,
        language: String,
        body_params: usize,
    },
}

pub fn send(
    state: &Arc<SimState>,
    phone_number_id: &str,
    body: &[u8],
) -> Result<Value, GraphError> {
    if phone_number_id != state.origin.phone_number_id {
        return Err(GraphError::unknown_object(phone_number_id));
    }
    let request = parse(body)?;
    let pricing = price(state, &request)?;
    let behaviour = state.behaviour.get();
    {
        let mut rng = rand::thread_rng();
        if rng.gen::<f64>() < behaviour.transient_error_rate {
            return Err(GraphError::transient(rng.gen()));
        }
    }
    let now = Instant::now();
    if !lock(&state.throughput).try_take(behaviour.rate_per_second, now) {
        return Err(GraphError::throughput_exceeded());
    }
    if !lock(&state.pairs).try_take(&request.wa_id, behaviour.pair_limit_seconds, now) {
        return Err(GraphError::pair_rate_limited());
    }
    Ok(accept(state, request, pricing))
}

fn accept(state: &Arc<SimState>, request: SendRequest, pricing: Pricing) -> Value {
    let wamid = ids::wamid();
    let (kind, template_name, language) = match &request.content {
        Content::Text => ("text", None, None),
        Content::Template { name, language, .. } => {
            ("template", Some(name.clone()), Some(language.clone()))
        }
    };
    lock(&state.sends).push(SendRecord {
        wamid: wamid.clone(),
        to: request.to.clone(),
        kind: kind.to_owned(),
        template_name,
        language,
        at: chrono::Utc::now(),
    });
    state.stats.accepted();
    lifecycle::schedule(
        state,
        MessageFacts {
            wamid: wamid.clone(),
            recipient_id: request.wa_id.clone(),
            pricing,
            conversation_id: ids::conversation_id(),
            biz_opaque_callback_data: request.biz_opaque_callback_data,
        },
    );
    // Meta reports the template pacing status only for template sends.
    let message = match request.content {
        Content::Template { .. } => json!({"id": wamid, "message_status": "accepted"}),
        Content::Text => json!({"id": wamid}),
    };
    json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": request.to, "wa_id": request.wa_id}],
        "messages": [message],
    })
}

/// Template sends must name a template known as APPROVED, with the right number of parameters.
fn price(state: &SimState, request: &SendRequest) -> Result<Pricing, GraphError> {
    let Content::Template {
        name,
        language,
        body_params,
    } = &request.content
    else {
        return Ok(Pricing::for_service_message());
    };
    let templates = lock(&state.templates);
    match templates.find(name, language).filter(|t| t.is_sendable()) {
        Some(template) => {
            if let Some(expected) = template.body_params {
                if expected != *body_params {
                    return Err(GraphError::parameter_count_mismatch(*body_params, expected));
                }
            }
            Ok(Pricing::for_template(template.pricing_category()))
        }
        None if state.behaviour.get().accept_unknown_templates => {
            Ok(Pricing::for_template(UNKNOWN_TEMPLATE_CATEGORY.to_owned()))
        }
        None => Err(GraphError::template_not_found(name, language)),
    }
}

fn parse(body: &[u8]) -> Result<SendRequest, GraphError> {
    let body: Value = serde_json::from_slice(body).map_err(|e| {
        GraphError::invalid_parameter(format!("request body is not valid JSON: {e}"))
    })?;
    if !body.is_object() {
        return Err(GraphError::invalid_parameter(
            "request body must be a JSON object",
        ));
    }
    match body.get("messaging_product") {
        None => return Err(GraphError::missing_parameter("messaging_product")),
        Some(Value::String(p)) if p == "whatsapp" => {}
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "messaging_product: must be \"whatsapp\"",
            ))
        }
    }
    let to = match body.get("to") {
        None | Some(Value::Null) => return Err(GraphError::missing_parameter("to")),
        Some(Value::String(to)) => to.trim().to_owned(),
        Some(_) => return Err(GraphError::invalid_parameter("to: must be a string")),
    };
    let wa_id = to.strip_prefix('+').unwrap_or(&to).to_owned();
    if !(7..=15).contains(&wa_id.len()) || !wa_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GraphError::invalid_parameter(
            "to: must be a phone number of 7 to 15 digits, optionally starting with +",
        ));
    }
    let kind = match body.get("type") {
        None => "text",
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(GraphError::invalid_parameter("type: must be a string")),
    };
    let content = match kind {
        "text" => parse_text(&body)?,
        "template" => parse_template(&body)?,
        other => {
            return Err(GraphError::invalid_parameter(format!(
                "type: the simulator supports text and template messages, not {other:?}"
            )))
        }
    };
    Ok(SendRequest {
        to,
        wa_id,
        content,
        biz_opaque_callback_data: body
            .get("biz_opaque_callback_data")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn parse_text(body: &Value) -> Result<Content, GraphError> {
    match body.get("text").and_then(|t| t.get("body")) {
        Some(Value::String(text)) if !text.is_empty() => Ok(Content::Text),
        Some(_) => Err(GraphError::invalid_parameter(
            "text.body: must be a non-empty string",
        )),
        None => Err(GraphError::missing_parameter("text.body")),
    }
}

fn parse_template(body: &Value) -> Result<Content, GraphError> {
    let template = body
        .get("template")
        .ok_or_else(|| GraphError::missing_parameter("template"))?;
    let name = match template.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "template.name: must be a string",
            ))
        }
        None => return Err(GraphError::missing_parameter("template.name")),
    };
    let language = match template.get("language").and_then(|l| l.get("code")) {
        Some(Value::String(code)) if !code.is_empty() => code.clone(),
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "template.language.code: must be a string",
            ))
        }
        None => return Err(GraphError::missing_parameter("template.language.code")),
    };
    let body_params = match template.get("components") {
        None | Some(Value::Null) => 0,
        Some(Value::Array(components)) => components
            .iter()
            .filter(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("body"))
            })
            .map(|c| {
                c.get("parameters")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            })
            .sum(),
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "template.components: must be an array",
            ))
        }
    };
    Ok(Content::Template {
        name,
        language,
        body_params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: Value) -> GraphError {
        parse(body.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn parse_names_the_bad_field() {
        let missing_to =
            err(json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "hi"}}));
        assert_eq!(missing_to.code, 100);
        assert!(missing_to.details.unwrap().contains("to"));
        let short = err(
            json!({"messaging_product": "whatsapp", "to": "+12", "type": "text", "text": {"body": "hi"}}),
        );
        assert!(short.details.unwrap().starts_with("to:"));
        let letters = err(
            json!({"messaging_product": "whatsapp", "to": "91abc45678", "text": {"body": "x"}}),
        );
        assert_eq!(letters.code, 100);
        assert_eq!(parse(b"{not json").unwrap_err().code, 100);
        let no_lang = err(
            json!({"messaging_product": "whatsapp", "to": "919800000001", "type": "template", "template": {"name": "x"}}),
        );
        assert!(no_lang.details.unwrap().contains("template.language.code"));
    }

    #[test]
    fn parse_counts_body_parameters() {
        let request = parse(
            json!({
                "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+16505551234",
                "type": "template",
                "template": {"name": "order_confirmation", "language": {"code": "en_US"}, "components": [
                    {"type": "header", "parameters": [{"type": "text", "text": "H"}]},
                    {"type": "body", "parameters": [{"type": "text", "text": "Jessica"}, {"type": "text", "text": "SKBUP2"}]}
                ]}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(request.wa_id, "16505551234");
        assert_eq!(request.to, "+16505551234");
        match request.content {
            Content::Template { body_params, .. } => assert_eq!(body_params, 2),
            Content::Text => panic!("expected a template"),
        }
    }
}
