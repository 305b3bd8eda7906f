//! Razorpay's `/v1` endpoints (Basic auth) and the `/_sim/razorpay` control API (no auth).

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::razorpay::control;
use crate::razorpay::error::RazorpayError;
use crate::state::SimState;

type AppState = State<Arc<SimState>>;

pub async fn create_order(State(state): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let sim = &state.razorpay;
    respond(
        sim.authenticate(&headers)
            .and_then(|()| sim.create_order(&body))
            .map(|order| json!(order)),
    )
}

pub async fn get_order(
    State(state): AppState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let sim = &state.razorpay;
    respond(
        sim.authenticate(&headers)
            .and_then(|()| path_id(path))
            .and_then(|id| sim.order(&id))
            .map(|order| json!(order)),
    )
}

pub async fn get_order_payments(
    State(state): AppState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let sim = &state.razorpay;
    respond(
        sim.authenticate(&headers)
            .and_then(|()| path_id(path))
            .and_then(|id| sim.order_payments(&id)),
    )
}

pub async fn get_payment(
    State(state): AppState,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let sim = &state.razorpay;
    respond(
        sim.authenticate(&headers)
            .and_then(|()| path_id(path))
            .and_then(|id| sim.payment(&id)),
    )
}

pub async fn pay(State(state): AppState, body: Bytes) -> Response {
    respond(parse(&body).and_then(|request| control::pay(&state.razorpay, request)))
}

pub async fn refund(State(state): AppState, body: Bytes) -> Response {
    respond(parse(&body).and_then(|request| control::refund(&state.razorpay, request)))
}

pub async fn event(State(state): AppState, body: Bytes) -> Response {
    let result = match parse(&body) {
        Ok(request) => control::event(&state.razorpay, request).await,
        Err(error) => Err(error),
    };
    respond(result)
}

#[derive(Debug, Deserialize)]
pub struct WebhooksQuery {
    limit: Option<usize>,
}

const DEFAULT_LIST_LIMIT: usize = 10_000;

pub async fn webhooks(
    State(state): AppState,
    query: Result<Query<WebhooksQuery>, QueryRejection>,
) -> Response {
    let result = query
        .map_err(|e| RazorpayError::bad_body(format!("query: {e}")))
        .map(|Query(q)| {
            json!(state
                .razorpay
                .webhooks
                .records(q.limit.unwrap_or(DEFAULT_LIST_LIMIT)))
        });
    respond(result)
}

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, RazorpayError> {
    path.map(|Path(id)| id)
        .map_err(|_| RazorpayError::unknown_id())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, RazorpayError> {
    serde_json::from_slice(body).map_err(RazorpayError::bad_body)
}

fn respond(result: Result<Value, RazorpayError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}
