//! `/v1/messages`: the vendor's message log. Any role of the vendor.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use kloyst_campaigns::{MessageFilter, MessageView};
use kloyst_core::page::Page;
use kloyst_http::extract::Query;
use kloyst_http::ApiError;

use crate::auth::AuthUser;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/messages", get(list_messages))
}

/// `?campaign_id=&status=&limit=&cursor=`, newest first.
async fn list_messages(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(filter): Query<MessageFilter>,
) -> Result<axum::Json<Page<MessageView>>, ApiError> {
    Ok(axum::Json(state.campaigns.messages(&who, filter).await?))
}
