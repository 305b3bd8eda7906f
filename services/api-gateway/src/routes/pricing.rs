//! `GET /v1/pricing/rates`: the caller vendor's own prices (Meta's rate, margin and total per
//! market × category) on the rate card in force now. Any role may read them.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use kloyst_http::ApiError;
use kloyst_pricing::RateSheet;

use crate::auth::AuthUser;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/pricing/rates", get(rates))
}

async fn rates(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<axum::Json<RateSheet>, ApiError> {
    let now = chrono::Utc::now();
    Ok(axum::Json(
        state.pricing.rate_sheet(who.vendor_id, now).await?,
    ))
}
