//! `/v1/auth/*`: registration, verification, login, tokens. Public (no bearer token), so
//! limited per client IP.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use kloyst_http::extract::Json;
use kloyst_http::ApiError;
use kloyst_identity::{
    AcceptInviteInput, LoginInput, RefreshInput, RegisterInput, SendOtpInput, TokenPair,
    VerifyOtpInput,
};
use serde_json::json;

use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/send-otp", post(send_otp))
        .route("/v1/auth/verify-otp", post(verify_otp))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/accept-invite", post(accept_invite))
}

/// The same answer whether or not the email is known (no account enumeration).
async fn register(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Json(input): Json<RegisterInput>,
) -> Result<impl IntoResponse, ApiError> {
    state.identity.register(input, &meta).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "status": "verification_sent",
            "detail": "check your inbox for a 6-digit code to verify your email",
        })),
    ))
}

async fn send_otp(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Json(input): Json<SendOtpInput>,
) -> Result<impl IntoResponse, ApiError> {
    state.identity.send_otp(input, &meta).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({ "status": "verification_sent" })),
    ))
}

async fn verify_otp(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Json(input): Json<VerifyOtpInput>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    Ok(axum::Json(state.identity.verify_otp(input, &meta).await?))
}

async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Json(input): Json<LoginInput>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    Ok(axum::Json(state.identity.login(input, &meta).await?))
}

async fn refresh(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Json(input): Json<RefreshInput>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    Ok(axum::Json(state.identity.refresh(input, &meta).await?))
}

async fn logout(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Json(input): Json<RefreshInput>,
) -> Result<StatusCode, ApiError> {
    state.identity.logout(input, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn accept_invite(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Json(input): Json<AcceptInviteInput>,
) -> Result<axum::Json<TokenPair>, ApiError> {
    Ok(axum::Json(
        state.identity.accept_invite(input, &meta).await?,
    ))
}
