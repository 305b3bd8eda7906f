//! `/v1/vendor/me`: the caller's own vendor. Reading is for everyone in it; changes are
//! ADMIN-only.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use kloyst_http::extract::Json;
use kloyst_http::ApiError;
use kloyst_identity::{VendorPatch, VendorProfile};

use crate::auth::{AdminUser, AuthUser};
use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/vendor/me", get(show).patch(update))
}

async fn show(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<axum::Json<VendorProfile>, ApiError> {
    Ok(axum::Json(state.identity.vendor_profile(&who).await?))
}

async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Meta(meta): Meta,
    Json(patch): Json<VendorPatch>,
) -> Result<axum::Json<VendorProfile>, ApiError> {
    Ok(axum::Json(
        state
            .identity
            .update_vendor_profile(&admin, patch, &meta)
            .await?,
    ))
}
