//! Test-only actions: inbound messages and floods of synthetic status webhooks.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use crate::graph_error::GraphError;
use crate::ids;
use crate::state::SimState;
use crate::webhooks::delivery::DeliveryKind;
use crate::webhooks::payload::{self, InboundContent, InboundMessage, MessageFacts, Pricing};

#[derive(Debug, Deserialize)]
pub struct InboundRequest {
    #[serde(default)]
    pub from: String,
    pub text: Option<String>,
    pub button_text: Option<String>,
    pub name: Option<String>,
}

/// Posts a user's message to the business; returns its wamid.
pub fn inbound(state: &SimState, request: InboundRequest) -> Result<String, GraphError> {
    let from = request.from.trim_start_matches('+').to_owned();
    if !(7..=15).contains(&from.len()) || !from.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GraphError::invalid_parameter(
            "from: must be a phone number of 7 to 15 digits",
        ));
    }
    let content = match (request.text, request.button_text) {
        (_, Some(button)) => InboundContent::Button(button),
        (Some(text), None) => InboundContent::Text(text),
        (None, None) => return Err(GraphError::missing_parameter("text")),
    };
    let message = InboundMessage {
        wamid: ids::wamid(),
        from,
        profile_name: request.name.unwrap_or_else(|| "Sim User".to_owned()),
        content,
    };
    let body = payload::inbound_body(&state.origin, &message, chrono::Utc::now().timestamp());
    state.post_webhook(DeliveryKind::Inbound, 1, &body);
    state.stats.inbound_posted.fetch_add(1, Ordering::Relaxed);
    Ok(message.wamid)
}

#[derive(Debug, Deserialize)]
pub struct FloodRequest {
    pub count: usize,
    pub statuses_per_post: Option<usize>,
}

/// Most statuses one flood may create, so a typo cannot exhaust memory.
const FLOOD_MAX: usize = 1_000_000;

/// `count` synthetic `delivered` statuses for random wamids, straight to delivery.
pub fn flood(state: &Arc<SimState>, request: FloodRequest) -> Result<Vec<u64>, GraphError> {
    if request.count > FLOOD_MAX {
        return Err(GraphError::invalid_parameter(format!(
            "count: at most {FLOOD_MAX}"
        )));
    }
    let per_post = request.statuses_per_post.unwrap_or(1);
    if !(1..=crate::settings::MAX_BATCH).contains(&per_post) {
        return Err(GraphError::invalid_parameter(
            "statuses_per_post: must be 1..=1000",
        ));
    }
    let with_pricing = state.behaviour.get().pricing_on_delivered();
    let now = chrono::Utc::now().timestamp();
    let mut ids_posted = Vec::new();
    let mut remaining = request.count;
    while remaining > 0 {
        let n = remaining.min(per_post);
        remaining -= n;
        let statuses = (0..n)
            .map(|i| {
                let facts = MessageFacts {
                    wamid: ids::wamid(),
                    recipient_id: format!("9190000{:05}", i % 100_000),
                    pricing: Pricing::for_template("utility".to_owned()),
                    conversation_id: ids::conversation_id(),
                    biz_opaque_callback_data: None,
                };
                payload::status(&facts, "delivered", now, with_pricing, None)
            })
            .collect();
        let body = payload::statuses_body(&state.origin, statuses);
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| GraphError::invalid_parameter(format!("could not build a body: {e}")))?;
        if let Some(id) = state
            .deliverer
            .post(DeliveryKind::Statuses, n, Bytes::from(bytes))
        {
            ids_posted.push(id);
        }
    }
    Ok(ids_posted)
}
