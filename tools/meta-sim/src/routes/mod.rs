//! The HTTP surface: Meta's Graph endpoints and the `/_sim` control API.

mod control;
mod graph;

use std::sync::Arc;

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::graph_error::GraphError;
use crate::state::SimState;

pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/_sim/health", get(control::health))
        .route(
            "/_sim/behaviour",
            get(control::get_behaviour)
                .put(control::put_behaviour)
                .patch(control::patch_behaviour),
        )
        .route("/_sim/templates", post(control::seed_template))
        .route("/_sim/templates/{id}/events", post(control::template_event))
        .route("/_sim/inbound", post(control::inbound))
        .route("/_sim/flood", post(control::flood))
        .route("/_sim/messages", get(control::messages))
        .route("/_sim/webhooks", get(control::webhooks))
        .route("/_sim/stats", get(control::stats))
        .route("/{version}/{node}/messages", post(graph::send_message))
        .route(
            "/{version}/{node}/message_templates",
            post(graph::create_template).get(graph::list_templates),
        )
        .route("/{version}/{node}", get(graph::get_node))
        .fallback(unknown_path)
        .with_state(state)
}

async fn unknown_path(uri: Uri) -> Response {
    GraphError::unknown_path(uri.path()).into_response()
}
