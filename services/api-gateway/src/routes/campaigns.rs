//! `/v1/campaigns`: quotes, launch, pause / resume / cancel, and the reads with live
//! counters.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kloyst_campaigns::{
    CampaignError, CampaignFilter, CampaignView, LaunchRequest, Quote, QuoteRequest,
    RecipientFilter, RecipientView,
};
use kloyst_core::page::Page;
use kloyst_http::extract::{Json, Path, Query};
use kloyst_http::ApiError;
use uuid::Uuid;

use super::idempotency;
use crate::auth::AuthUser;
use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/campaigns", get(list_campaigns))
        .route("/v1/campaigns/quote", post(quote))
        .route("/v1/campaigns/launch", post(launch))
        .route("/v1/campaigns/{id}", get(show_campaign))
        .route("/v1/campaigns/{id}/recipients", get(list_recipients))
        .route("/v1/campaigns/{id}/pause", post(pause))
        .route("/v1/campaigns/{id}/resume", post(resume))
        .route("/v1/campaigns/{id}/cancel", post(cancel))
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

/// `{name, template_id, list_id, parameters, scheduled_at?}` with an optional
/// `Idempotency-Key`: 202 with the campaign and its quote, or 200 with the first launch for a
/// retried key. ADMIN and STAFF alike: the hold protects the money.
async fn launch(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    headers: HeaderMap,
    Json(request): Json<LaunchRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency::key(&headers)?;
    let launched = state
        .campaigns
        .launch(&who, request, key, &meta)
        .await
        .map_err(problem)?;
    let replayed = launched.replayed;
    Ok(idempotency::answer(
        StatusCode::ACCEPTED,
        replayed,
        launched,
    ))
}

/// `?status=&limit=&cursor=`, newest first.
async fn list_campaigns(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(filter): Query<CampaignFilter>,
) -> Result<axum::Json<Page<CampaignView>>, ApiError> {
    Ok(axum::Json(state.campaigns.list(&who, filter).await?))
}

async fn show_campaign(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<CampaignView>, ApiError> {
    Ok(axum::Json(state.campaigns.get(&who, id).await?))
}

/// `?status=&limit=&cursor=`, in `seq` order.
async fn list_recipients(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<Uuid>,
    Query(filter): Query<RecipientFilter>,
) -> Result<axum::Json<Page<RecipientView>>, ApiError> {
    Ok(axum::Json(
        state.campaigns.recipients(&who, id, filter).await?,
    ))
}

async fn pause(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<CampaignView>, ApiError> {
    Ok(axum::Json(state.campaigns.pause(&who, id, &meta).await?))
}

async fn resume(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<CampaignView>, ApiError> {
    Ok(axum::Json(state.campaigns.resume(&who, id, &meta).await?))
}

async fn cancel(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<CampaignView>, ApiError> {
    Ok(axum::Json(state.campaigns.cancel(&who, id, &meta).await?))
}

/// The launch's errors; a 402 also says how much is required, available and missing.
fn problem(error: CampaignError) -> ApiError {
    match error {
        CampaignError::InsufficientFunds {
            shortfall,
            required,
            available,
        } => ApiError::from(CampaignError::InsufficientFunds {
            shortfall,
            required,
            available,
        })
        .with_extension(
            "shortfall",
            serde_json::Value::String(shortfall.to_string()),
        )
        .with_extension("required", serde_json::Value::String(required.to_string()))
        .with_extension(
            "available",
            serde_json::Value::String(available.to_string()),
        ),
        other => other.into(),
    }
}
