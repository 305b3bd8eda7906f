//! `/v1/campaigns`: quotes (and, later, launch and lifecycle).

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use kloyst_campaigns::{Quote, QuoteRequest};
use kloyst_http::extract::Json;
use kloyst_http::ApiError;

use crate::auth::AuthUser;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/campaigns/quote", post(quote))
}

/// `{template_id, list_id}` → what sending the template to the list would cost now, by
/// market, and whether the wallet covers it. Any role of the vendor.
async fn quote(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Json(request): Json<QuoteRequest>,
) -> Result<axum::Json<Quote>, ApiError> {
    Ok(axum::Json(state.quotes.quote(&who, request).await?))
}
