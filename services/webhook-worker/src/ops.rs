//! `/internal/dead-letters`: the operators' view of webhooks whose processing failed for
//! good, and their replay; `/internal/dead-statuses`: the same for statuses the applier gave
//! up on (their message never appeared). Outside `/webhook/*`, so the public proxy never routes here; and
//! guarded by `OPS_TOKEN` (a bearer token), without which these routes answer 403.

use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use kloyst_config::Secret;
use kloyst_core::page::{Page, PageRequest};
use kloyst_core::FieldError;
use kloyst_delivery::{DeadStatus, DeadStatusError};
use kloyst_http::error::ApiError;
use kloyst_http::extract::{Path, Query};
use kloyst_inbox::dead_letters::{self, DeadLetter, DeadLetterQuery, ListError};
use kloyst_inbox::{InboxNotifier, Source};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct OpsState {
    pub pg: PgPool,
    pub token: Option<Secret<String>>,
    pub notifier: InboxNotifier,
}

pub fn routes(state: OpsState) -> Router {
    Router::new()
        .route("/internal/dead-letters", get(list))
        .route("/internal/dead-letters/replay", post(replay_many))
        .route("/internal/dead-letters/{id}/replay", post(replay_one))
        .route("/internal/dead-statuses", get(list_statuses))
        .route("/internal/dead-statuses/replay", post(replay_statuses))
        .with_state(state)
}

/// The caller presented `Authorization: Bearer <OPS_TOKEN>`.
struct Operator;

impl FromRequestParts<OpsState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &OpsState) -> Result<Self, ApiError> {
        let Some(token) = &state.token else {
            return Err(
                ApiError::forbidden("the ops API is disabled: set OPS_TOKEN to enable it")
                    .with_code("ops_disabled"),
            );
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
            Ok(Operator)
        } else {
            Err(ApiError::unauthorized("the token is not the ops token"))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    source: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn parse_source(raw: Option<&str>) -> Result<Option<Source>, ApiError> {
    raw.map(|raw| {
        Source::parse(raw).ok_or_else(|| {
            ApiError::unprocessable(vec![FieldError::new(
                "source",
                "invalid_source",
                "source must be META or RAZORPAY",
            )])
        })
    })
    .transpose()
}

async fn list(
    _: Operator,
    State(state): State<OpsState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<DeadLetter>>, ApiError> {
    let page = PageRequest {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page
        .limit()
        .map_err(|error| ApiError::unprocessable(vec![error]))?;
    let query = DeadLetterQuery {
        source: parse_source(query.source.as_deref())?,
        limit,
        cursor: page.cursor,
    };
    match dead_letters::list(&state.pg, &query).await {
        Ok(page) => Ok(Json(page)),
        Err(ListError::Cursor(error)) => Err(ApiError::unprocessable(vec![error])),
        Err(ListError::Database(error)) => Err(ApiError::internal(&error)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    /// These dead letters; or, with `all: true`, every one (of `source`, if given).
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    all: bool,
    source: Option<String>,
}

#[derive(Serialize)]
struct Replayed {
    replayed: u64,
    /// The ids replayed (when ids were given).
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<i64>>,
}

async fn replay_many(
    _: Operator,
    State(state): State<OpsState>,
    kloyst_http::extract::Json(request): kloyst_http::extract::Json<ReplayRequest>,
) -> Result<Json<Replayed>, ApiError> {
    let source = parse_source(request.source.as_deref())?;
    let replayed = match (request.all, request.ids.is_empty()) {
        (true, true) => {
            let count = dead_letters::replay_all(&state.pg, source)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            Replayed {
                replayed: count,
                ids: None,
            }
        }
        (false, false) if request.ids.len() <= 1000 => {
            let ids = dead_letters::replay(&state.pg, &request.ids)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            Replayed {
                replayed: ids.len() as u64,
                ids: Some(ids),
            }
        }
        _ => {
            return Err(ApiError::unprocessable(vec![FieldError::new(
                "ids",
                "invalid_selection",
                "give 1 to 1000 ids, or all: true without ids",
            )]))
        }
    };
    if replayed.replayed > 0 {
        state.notifier.notify_new().await;
    }
    Ok(Json(replayed))
}

async fn replay_one(
    _: Operator,
    State(state): State<OpsState>,
    Path(id): Path<i64>,
) -> Result<Json<Replayed>, ApiError> {
    let ids = dead_letters::replay(&state.pg, &[id])
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if ids.is_empty() {
        return Err(ApiError::not_found("dead letter"));
    }
    state.notifier.notify_new().await;
    Ok(Json(Replayed {
        replayed: 1,
        ids: Some(ids),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Dead-lettered statuses, newest first, with the reason and Meta's payload.
async fn list_statuses(
    _: Operator,
    State(state): State<OpsState>,
    Query(query): Query<StatusListQuery>,
) -> Result<Json<Page<DeadStatus>>, ApiError> {
    let page = PageRequest {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page
        .limit()
        .map_err(|error| ApiError::unprocessable(vec![error]))?;
    match kloyst_delivery::list_dead_statuses(&state.pg, limit, page.cursor.as_deref()).await {
        Ok(page) => Ok(Json(page)),
        Err(DeadStatusError::Cursor(error)) => Err(ApiError::unprocessable(vec![error])),
        Err(DeadStatusError::Database(error)) => Err(ApiError::internal(&error)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusReplayRequest {
    /// These dead statuses; or, with `all: true`, every one.
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    all: bool,
}

/// Makes dead statuses due again; the applier picks them up on its next poll.
async fn replay_statuses(
    _: Operator,
    State(state): State<OpsState>,
    kloyst_http::extract::Json(request): kloyst_http::extract::Json<StatusReplayRequest>,
) -> Result<Json<Replayed>, ApiError> {
    let ids = match (request.all, request.ids.is_empty()) {
        (true, true) => None,
        (false, false) if request.ids.len() <= 1000 => Some(request.ids.as_slice()),
        _ => {
            return Err(ApiError::unprocessable(vec![FieldError::new(
                "ids",
                "invalid_selection",
                "give 1 to 1000 ids, or all: true without ids",
            )]))
        }
    };
    let replayed = kloyst_delivery::replay_dead_statuses(&state.pg, ids)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(Replayed {
        replayed: replayed.len() as u64,
        ids: Some(replayed),
    }))
}
