//! Liveness, readiness and metrics routes.
//!
//! `/healthz` says the process answers; `/readyz` says it can do its work (Postgres and
//! Redis answer) and names what is down otherwise; `/metrics` is Prometheus text.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use kloyst_db::redis::RedisPool;
use kloyst_db::PgPool;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::middleware::{self, Limits};

#[derive(Clone)]
pub struct HealthState {
    pub service: &'static str,
    pub pg: PgPool,
    pub redis: RedisPool,
    pub probe_timeout: Duration,
}

impl HealthState {
    pub fn new(service: &'static str, pg: PgPool, redis: RedisPool) -> Self {
        // Install the recorder now: anything recorded before it exists is lost.
        kloyst_telemetry::prometheus_handle();
        Self {
            service,
            pg,
            redis,
            probe_timeout: Duration::from_secs(2),
        }
    }
}

/// `/healthz`, `/readyz`, `/metrics`, and `/healthz`, `/readyz` again under `prefix`
/// (e.g. `/v1`) so they can be reached through the proxy's routing.
pub fn routes<S>(state: HealthState, prefix: Option<&str>) -> Router<S> {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    if let Some(prefix) = prefix {
        router = router
            .route(&format!("{prefix}/healthz"), get(healthz))
            .route(&format!("{prefix}/readyz"), get(readyz));
    }
    router.with_state(state)
}

/// The whole HTTP app of a worker process: health, readiness and metrics, nothing else.
pub fn worker_app(state: HealthState) -> Router {
    let service = state.service;
    middleware::stack(
        routes(state, None),
        service,
        Limits {
            body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
        },
    )
}

async fn healthz(State(state): State<HealthState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "service": state.service,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn readyz(State(state): State<HealthState>) -> Result<Json<Value>, ApiError> {
    let (pg, redis) = tokio::join!(
        kloyst_db::ping(&state.pg, state.probe_timeout),
        kloyst_db::redis::ping(&state.redis, state.probe_timeout),
    );
    let describe = |ok: bool| if ok { "ok" } else { "unavailable" };
    let checks = json!({ "postgres": describe(pg.is_ok()), "redis": describe(redis.is_ok()) });
    let mut down = Vec::new();
    if let Err(e) = &pg {
        tracing::warn!(error = %e, "readiness: postgres unavailable");
        down.push("postgres");
    }
    if let Err(e) = &redis {
        tracing::warn!(error = %e, "readiness: redis unavailable");
        down.push("redis");
    }
    if down.is_empty() {
        Ok(Json(
            json!({ "status": "ready", "service": state.service, "checks": checks }),
        ))
    } else {
        Err(ApiError::service_unavailable(
            "dependency_unavailable",
            format!("{} unavailable", down.join(" and ")),
        )
        .with_extension("checks", checks))
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        kloyst_telemetry::render_metrics(),
    )
}
