//! `/v1/campaigns`: quotes, launch, pause / resume / cancel, and the reads with live
//! counters.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kloyst_campaigns::{
    CampaignError, CampaignFilter, CampaignView, LaunchRequest, Quote, QuoteRequest,
    RecipientFilter, RecipientView, RetryRequest,
};
use kloyst_core::page::Page;
use kloyst_http::extract::{body_rejection, parse_json, Json, Path, Query};
use kloyst_http::ApiError;
use serde::de::DeserializeOwned;
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
        .route("/v1/campaigns/{id}/retry-failed", post(retry_failed))
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

/// A RETRY campaign of a finished campaign's retryable failures. The body is optional
/// (`{name?}`; none, or an empty one, takes the default name); an optional
/// `Idempotency-Key` as for the launch: 202 with the new campaign and its quote, or 200 with
/// the first retry for a retried key. ADMIN and STAFF alike, like the launch.
async fn retry_failed(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency::key(&headers)?;
    let body = body.map_err(body_rejection)?;
    let request = optional_json::<RetryRequest>(&headers, &body)?;
    let launched = state
        .campaigns
        .retry_failed(&who, id, request, key, &meta)
        .await
        .map_err(problem)?;
    let replayed = launched.replayed;
    Ok(idempotency::answer(
        StatusCode::ACCEPTED,
        replayed,
        launched,
    ))
}

/// An optional JSON body: none (or only whitespace) is `T::default()`; otherwise it must be
/// JSON (415) of `T`'s shape (400 malformed, 422 naming the field, unknown fields included).
fn optional_json<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .is_some_and(|media| media == "application/json" || media.ends_with("+json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a body with Content-Type: application/json",
        ));
    }
    parse_json(body)
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

/// The launch's and the retry's errors; a 402 also says how much is required, available and missing.
pub(super) fn problem(error: CampaignError) -> ApiError {
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
