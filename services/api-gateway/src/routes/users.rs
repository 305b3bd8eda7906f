//! `/v1/users`: the vendor's team. Inviting and changing members is ADMIN-only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use kloyst_core::UserId;
use kloyst_http::extract::{Json, Path, Query};
use kloyst_http::ApiError;
use kloyst_identity::{InviteInput, Page, PageRequest, UserPatch, UserView};
use uuid::Uuid;

use crate::auth::{AdminUser, AuthUser};
use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users", get(list).post(invite))
        .route("/v1/users/{id}", get(show).patch(update))
}

async fn invite(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Meta(meta): Meta,
    Json(input): Json<InviteInput>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    let user = state.identity.invite(&admin, input, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(page): Query<PageRequest>,
) -> Result<axum::Json<Page<UserView>>, ApiError> {
    Ok(axum::Json(state.identity.list_users(&who, page).await?))
}

async fn show(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = state.identity.get_user(&who, UserId::from_uuid(id)).await?;
    Ok(axum::Json(user))
}

async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
    Json(patch): Json<UserPatch>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = state
        .identity
        .update_user(&admin, UserId::from_uuid(id), patch, &meta)
        .await?;
    Ok(axum::Json(user))
}
