//! The HTTP surface: Meta's Graph endpoints, Razorpay's `/v1` and the `/_sim` control API.

mod control;
mod graph;
mod razorpay;

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
        .route("/_sim/razorpay/pay", post(razorpay::pay))
        .route("/_sim/razorpay/refund", post(razorpay::refund))
        .route("/_sim/razorpay/event", post(razorpay::event))
        .route("/_sim/razorpay/webhooks", get(razorpay::webhooks))
        .route("/v1/orders", post(razorpay::create_order))
        .route("/v1/orders/{id}", get(razorpay::get_order))
        .route(
            "/v1/orders/{id}/payments",
            get(razorpay::get_order_payments),
        )
        .route("/v1/payments/{id}", get(razorpay::get_payment))
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
