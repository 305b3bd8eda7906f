//! Meta's Graph endpoints: version and token checks, then the flow functions.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::Value;

use crate::graph_error::GraphError;
use crate::state::SimState;
use crate::{messages, template_flow};

type NodePath = Result<Path<(String, String)>, PathRejection>;

pub async fn send_message(
    State(state): State<Arc<SimState>>,
    path: NodePath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result =
        checked(&state, path, &headers).and_then(|node| messages::send(&state, &node, &body));
    if let Err(error) = &result {
        state.stats.rejected(error.code);
    }
    respond(result)
}

pub async fn create_template(
    State(state): State<Arc<SimState>>,
    path: NodePath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(
        checked(&state, path, &headers)
            .and_then(|node| template_flow::create(&state, &node, &body)),
    )
}

pub async fn list_templates(
    State(state): State<Arc<SimState>>,
    path: NodePath,
    headers: HeaderMap,
) -> Response {
    respond(checked(&state, path, &headers).and_then(|node| template_flow::list(&state, &node)))
}

pub async fn get_node(
    State(state): State<Arc<SimState>>,
    path: NodePath,
    headers: HeaderMap,
) -> Response {
    respond(checked(&state, path, &headers).and_then(|node| template_flow::node(&state, &node)))
}

/// The node id, once the version segment and the Bearer token are right.
fn checked(state: &SimState, path: NodePath, headers: &HeaderMap) -> Result<String, GraphError> {
    let Path((version, node)) =
        path.map_err(|e| GraphError::invalid_parameter(format!("path: {e}")))?;
    if !is_version(&version) {
        return Err(GraphError::unknown_path(&format!("/{version}/{node}")));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if token != Some(state.access_token.as_str()) {
        return Err(GraphError::invalid_token());
    }
    Ok(node)
}

/// `v<digits>.<digits>`, e.g. `v21.0`.
fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = rest.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

fn respond(result: Result<Value, GraphError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_version;

    #[test]
    fn versions_look_like_v_major_minor() {
        assert!(is_version("v21.0"));
        assert!(is_version("v3.11"));
        assert!(!is_version("v21"));
        assert!(!is_version("21.0"));
        assert!(!is_version("v2x.0"));
        assert!(!is_version("v.0"));
    }
}
