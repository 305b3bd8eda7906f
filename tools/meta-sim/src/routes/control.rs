//! `/_sim`: inspect and steer the simulator from tests and load runs (no auth: a dev tool).

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::{self, FloodRequest, InboundRequest};
use crate::graph_error::GraphError;
use crate::settings::Behaviour;
use crate::state::SimState;
use crate::sync::lock;
use crate::template_flow::{self, parse_json};
use crate::webhooks::delivery::DeliveryFilter;

type AppState = State<Arc<SimState>>;

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn get_behaviour(State(state): AppState) -> Json<Behaviour> {
    Json((*state.behaviour.get()).clone())
}

/// Replaces the behaviour; fields left out take their defaults.
pub async fn put_behaviour(State(state): AppState, body: Bytes) -> Response {
    let result = parse_json::<Behaviour>(&body).and_then(|b| apply_behaviour(&state, b));
    respond(result)
}

/// Changes only the fields given.
pub async fn patch_behaviour(State(state): AppState, body: Bytes) -> Response {
    let result = parse_json::<Value>(&body).and_then(|patch| {
        let Value::Object(patch) = patch else {
            return Err(GraphError::invalid_parameter("body: must be a JSON object"));
        };
        let mut current = serde_json::to_value(&*state.behaviour.get())
            .map_err(|e| GraphError::invalid_parameter(e.to_string()))?;
        if let Value::Object(current) = &mut current {
            current.extend(patch);
        }
        let merged: Behaviour = serde_json::from_value(current)
            .map_err(|e| GraphError::invalid_parameter(format!("request body: {e}")))?;
        apply_behaviour(&state, merged)
    });
    respond(result)
}

fn apply_behaviour(state: &SimState, behaviour: Behaviour) -> Result<Value, GraphError> {
    behaviour
        .validate()
        .map_err(GraphError::invalid_parameter)?;
    state
        .deliverer
        .set_concurrency(behaviour.webhook_concurrency);
    let body = json!(behaviour);
    state.behaviour.set(behaviour);
    tracing::info!(behaviour = %body, "behaviour changed");
    Ok(body)
}

pub async fn seed_template(State(state): AppState, body: Bytes) -> Response {
    respond(
        template_flow::seed(&state, &body)
            .map(|t| json!({"id": t.id.to_string(), "status": t.status, "category": t.category})),
    )
}

#[derive(Debug, Deserialize)]
struct EventRequest {
    #[serde(default)]
    event: String,
    reason: Option<String>,
}

pub async fn template_event(
    State(state): AppState,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let Path(raw_id) = path.map_err(|e| GraphError::invalid_parameter(format!("path: {e}")))?;
        let id = raw_id
            .parse::<u64>()
            .map_err(|_| GraphError::control_not_found("template"))?;
        let request: EventRequest = parse_json(&body)?;
        let delivery =
            template_flow::apply_event(&state, id, &request.event, request.reason.as_deref())?;
        Ok(json!({"id": raw_id, "event": request.event, "delivery_id": delivery}))
    })();
    respond(result)
}

pub async fn inbound(State(state): AppState, body: Bytes) -> Response {
    let result = parse_json::<InboundRequest>(&body)
        .and_then(|request| control::inbound(&state, request))
        .map(|wamid| json!({"wamid": wamid}));
    respond(result)
}

pub async fn flood(State(state): AppState, body: Bytes) -> Response {
    let result = parse_json::<FloodRequest>(&body)
        .and_then(|request| control::flood(&state, request))
        .map(|ids| json!({"delivery_ids": ids}));
    match result {
        Ok(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
    #[serde(default)]
    pending: bool,
}

const DEFAULT_LIST_LIMIT: usize = 10_000;

pub async fn messages(
    State(state): AppState,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let result = list_query(query).map(|q| {
        let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        json!(lock(&state.sends).latest(limit))
    });
    respond(result)
}

pub async fn webhooks(
    State(state): AppState,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let result = list_query(query).map(|q| {
        let deliveries = state.deliverer.records(DeliveryFilter {
            limit: q.limit.unwrap_or(DEFAULT_LIST_LIMIT),
            pending_only: q.pending,
        });
        json!({"deliveries": deliveries, "summary": state.deliverer.summary()})
    });
    respond(result)
}

pub async fn stats(State(state): AppState) -> Json<Value> {
    let mut stats = state.stats.snapshot(&state.deliverer);
    stats["razorpay"] = state.razorpay.stats();
    Json(stats)
}

fn list_query(query: Result<Query<ListQuery>, QueryRejection>) -> Result<ListQuery, GraphError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| GraphError::invalid_parameter(format!("query: {e}")))
}

fn respond(result: Result<Value, GraphError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}
