//! `/v1/templates`: message templates. Any role of the vendor may create and read them;
//! a new one is saved PENDING and submitted to Meta by the worker-pool.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use kloyst_http::extract::{Json, Path, Query};
use kloyst_http::ApiError;
use kloyst_templates::model::{Page, TemplateFilter, TemplateInput, TemplateView};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/templates", get(list_templates).post(create_template))
        .route("/v1/templates/{id}", get(show_template))
}

async fn create_template(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Json(input): Json<TemplateInput>,
) -> Result<(StatusCode, axum::Json<TemplateView>), ApiError> {
    let template = state.templates.create(&who, input, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(template)))
}

/// `?limit=&cursor=&status=&category=&name=` (`name` is a prefix).
async fn list_templates(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(filter): Query<TemplateFilter>,
) -> Result<axum::Json<Page<TemplateView>>, ApiError> {
    Ok(axum::Json(state.templates.list(&who, filter).await?))
}

async fn show_template(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<TemplateView>, ApiError> {
    Ok(axum::Json(state.templates.get(&who, id).await?))
}
