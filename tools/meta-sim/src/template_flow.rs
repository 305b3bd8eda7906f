//! Templates: creation with a delayed review webhook, seeding, and status events on demand.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::graph_error::GraphError;
use crate::state::SimState;
use crate::sync::lock;
use crate::templates::{NewTemplate, TemplateRecord};
use crate::webhooks::delivery::DeliveryKind;
use crate::webhooks::payload::{self, TemplateEvent};

/// The events of Meta's `message_template_status_update` enum.
pub const EVENTS: &[&str] = &[
    "APPROVED",
    "ARCHIVED",
    "UNARCHIVED",
    "DELETED",
    "DISABLED",
    "FLAGGED",
    "IN_APPEAL",
    "LIMIT_EXCEEDED",
    "LOCKED",
    "PAUSED",
    "PENDING",
    "REINSTATED",
    "PENDING_DELETION",
    "REJECTED",
];

#[derive(Debug, Deserialize)]
struct CreateRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    category: String,
    components: Option<Value>,
}

/// `POST /{version}/{waba_id}/message_templates`: stored PENDING, reviewed after a delay.
pub fn create(state: &Arc<SimState>, waba_id: &str, body: &[u8]) -> Result<Value, GraphError> {
    if waba_id != state.origin.waba_id {
        return Err(GraphError::unknown_object(waba_id));
    }
    let request: CreateRequest = parse_json(body)?;
    let components = match request.components {
        Some(Value::Array(components)) if !components.is_empty() => Value::Array(components),
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "components: must be a non-empty array",
            ))
        }
        None => return Err(GraphError::missing_parameter("components")),
    };
    let record = lock(&state.templates).create(NewTemplate {
        name: request.name,
        language: request.language,
        category: request.category,
        status: "PENDING".to_owned(),
        components,
    })?;
    state
        .stats
        .templates_created
        .fetch_add(1, Ordering::Relaxed);
    schedule_review(state, record.id);
    Ok(json!({"id": record.id.to_string(), "status": "PENDING", "category": record.category}))
}

fn schedule_review(state: &Arc<SimState>, id: u64) {
    let delay = Duration::from_millis(state.behaviour.get().template_review_delay_ms);
    let state_for_task = Arc::clone(state);
    state.tasks.spawn(async move {
        let state = state_for_task;
        tokio::select! {
            biased;
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        let name = lock(&state.templates).get(id).map(|t| t.name.clone());
        let Some(name) = name else { return };
        let event = if state.behaviour.get().rejects_template(&name) {
            "REJECTED"
        } else {
            "APPROVED"
        };
        // A status set meanwhile through the control API wins over the review.
        let still_pending = lock(&state.templates)
            .get(id)
            .is_some_and(|t| t.status == "PENDING");
        if still_pending {
            let _ = apply_event(&state, id, event, None);
        }
    });
}

/// Sets the template's status and posts the matching webhook; the delivery id if posted.
pub fn apply_event(
    state: &Arc<SimState>,
    id: u64,
    event: &str,
    reason: Option<&str>,
) -> Result<Option<u64>, GraphError> {
    if !EVENTS.contains(&event) {
        return Err(GraphError::invalid_parameter(format!(
            "event: must be one of {}",
            EVENTS.join(", ")
        )));
    }
    let record = lock(&state.templates)
        .set_status(id, event)
        .ok_or_else(|| GraphError::control_not_found("template"))?;
    let body = payload::template_status_body(
        &state.origin,
        &TemplateEvent {
            event,
            template_id: record.id,
            name: &record.name,
            language: &record.language,
            category: &record.category,
            reason,
        },
        chrono::Utc::now().timestamp(),
    );
    tracing::info!(
        template.id = record.id,
        template.event = event,
        "template status webhook"
    );
    Ok(state.post_webhook(DeliveryKind::TemplateStatus, 1, &body))
}

#[derive(Debug, Deserialize)]
struct SeedRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    category: String,
    status: Option<String>,
    components: Option<Value>,
}

/// `POST /_sim/templates`: a template known at once (no webhook), APPROVED unless told.
pub fn seed(state: &SimState, body: &[u8]) -> Result<TemplateRecord, GraphError> {
    let request: SeedRequest = parse_json(body)?;
    let status = request.status.unwrap_or_else(|| "APPROVED".to_owned());
    if !EVENTS.contains(&status.as_str()) {
        return Err(GraphError::invalid_parameter(
            "status: not a template status",
        ));
    }
    lock(&state.templates).create(NewTemplate {
        name: request.name,
        language: request.language,
        category: request.category,
        status,
        components: request.components.unwrap_or(Value::Null),
    })
}

/// `GET /{version}/{waba_id}/message_templates`: one page with Meta's `data` and `paging`.
pub fn list(state: &SimState, waba_id: &str) -> Result<Value, GraphError> {
    if waba_id != state.origin.waba_id {
        return Err(GraphError::unknown_object(waba_id));
    }
    let data: Vec<Value> = lock(&state.templates)
        .list()
        .iter()
        .map(graph_view)
        .collect();
    Ok(json!({"data": data, "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}}))
}

/// `GET /{version}/{template_id}`: the template node (`?fields=status` reads its status).
pub fn node(state: &SimState, id: &str) -> Result<Value, GraphError> {
    let template = id
        .parse::<u64>()
        .ok()
        .and_then(|n| lock(&state.templates).get(n).cloned())
        .ok_or_else(|| GraphError::unknown_object(id))?;
    Ok(graph_view(&template))
}

fn graph_view(t: &TemplateRecord) -> Value {
    json!({
        "name": t.name,
        "components": t.components,
        "language": t.language,
        "status": t.status,
        "category": t.category,
        "id": t.id.to_string(),
    })
}

pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GraphError> {
    serde_json::from_slice(body)
        .map_err(|e| GraphError::invalid_parameter(format!("request body: {e}")))
}
