//! `/v1/api-keys`: a vendor's API keys for integrations (n8n and the like). ADMIN only, and
//! only for a signed-in user: a key cannot mint, list or revoke keys. How a key
//! authenticates is in `crate::auth`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use kloyst_http::extract::{Json, Path, Query};
use kloyst_http::ApiError;
use kloyst_identity::{ApiKeyView, CreatedApiKey, NewApiKey, Page, PageRequest};
use uuid::Uuid;

use crate::auth::AdminUser;
use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list).post(create))
        .route("/v1/api-keys/{id}", delete(revoke))
}

/// `{name, scopes, expires_at?}` → 201 with the whole key, shown this once.
async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Meta(meta): Meta,
    Json(input): Json<NewApiKey>,
) -> Result<(StatusCode, axum::Json<CreatedApiKey>), ApiError> {
    let created = state.identity.create_api_key(&admin, input, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `?limit=&cursor=`, newest first; every status, never a secret.
async fn list(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(page): Query<PageRequest>,
) -> Result<axum::Json<Page<ApiKeyView>>, ApiError> {
    Ok(axum::Json(
        state.identity.list_api_keys(&admin, page).await?,
    ))
}

/// 204; again for a revoked key too.
async fn revoke(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.identity.revoke_api_key(&admin, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
