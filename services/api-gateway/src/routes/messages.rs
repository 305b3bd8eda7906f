//! `/v1/messages`: the vendor's message log, and single template messages for integrations.
//! Any role of the vendor, or an API key with the route's scope.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kloyst_campaigns::{MessageFilter, MessageView, SendMessageRequest, SingleMessageView};
use kloyst_core::page::Page;
use kloyst_http::extract::{Json, Path, Query};
use kloyst_http::ApiError;
use kloyst_identity::ApiScope;
use uuid::Uuid;

use super::campaigns::problem;
use super::idempotency;
use crate::auth::AuthCaller;
use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/messages", get(list_messages).post(send_message))
        .route("/v1/messages/{id}", get(show_message))
}

/// `?campaign_id=&status=&limit=&cursor=`, newest first.
async fn list_messages(
    State(state): State<AppState>,
    caller: AuthCaller,
    Query(filter): Query<MessageFilter>,
) -> Result<axum::Json<Page<MessageView>>, ApiError> {
    let who = caller.require(ApiScope::MessagesRead)?;
    Ok(axum::Json(state.campaigns.messages(&who, filter).await?))
}

/// `{to, template_id, parameters?}` with an optional `Idempotency-Key`: 202 with the message's
/// id and price, or 200 with the first answer for a retried key. 402 (with the shortfall)
/// when the wallet cannot cover it.
async fn send_message(
    State(state): State<AppState>,
    caller: AuthCaller,
    Meta(meta): Meta,
    headers: HeaderMap,
    Json(request): Json<SendMessageRequest>,
) -> Result<Response, ApiError> {
    let who = caller.require(ApiScope::MessagesSend)?;
    let key = idempotency::key(&headers)?;
    let accepted = state
        .campaigns
        .send_message(&who, request, key, &meta)
        .await
        .map_err(problem)?;
    let replayed = accepted.replayed;
    Ok(idempotency::answer(
        StatusCode::ACCEPTED,
        replayed,
        accepted,
    ))
}

/// One single message's progress: queued, sent (with its wamid), delivered, read or failed
/// (with Meta's error), and what it cost.
async fn show_message(
    State(state): State<AppState>,
    caller: AuthCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<SingleMessageView>, ApiError> {
    let who = caller.require(ApiScope::MessagesRead)?;
    Ok(axum::Json(state.campaigns.message(&who, id).await?))
}
