//! `/v1/wallet`: the vendor's balance, ledger and recharges. Any role of the vendor may read
//! them; recharges (which move money) are ADMIN-only.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use kloyst_billing::{RechargeView, TransactionFilter, TransactionView, WalletView};
use kloyst_core::page::{Page, PageRequest};
use kloyst_http::extract::{Json, Query};
use kloyst_http::ApiError;
use kloyst_payments::{CheckoutResult, RechargeRequest, VerifiedCheckout};

use super::idempotency;
use crate::auth::{AdminUser, AuthUser};
use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallet/balance", get(show_balance))
        .route("/v1/wallet/transactions", get(list_transactions))
        .route("/v1/wallet/recharges", get(list_recharges))
        .route("/v1/wallet/recharge/init", post(init_recharge))
        .route("/v1/wallet/recharge/verify", post(verify_recharge))
}

/// `{amount}` with an optional `Idempotency-Key`: 201 with what Checkout needs, or 200 with
/// the same order for a retried key.
async fn init_recharge(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    Meta(meta): Meta,
    headers: HeaderMap,
    Json(request): Json<RechargeRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency::key(&headers)?;
    let order = state.recharges.init(&who, request, key, &meta).await?;
    let replayed = order.replayed;
    Ok(idempotency::answer(StatusCode::CREATED, replayed, order))
}

/// What Checkout's success handler received; checked, never credited from here.
async fn verify_recharge(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    Json(checkout): Json<CheckoutResult>,
) -> Result<axum::Json<VerifiedCheckout>, ApiError> {
    Ok(axum::Json(state.recharges.verify(&who, checkout).await?))
}

async fn show_balance(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<axum::Json<WalletView>, ApiError> {
    Ok(axum::Json(state.wallet.balance(&who).await?))
}

/// `?limit=&cursor=&type=&from=&to=` (`from` inclusive, `to` exclusive, RFC 3339).
async fn list_transactions(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(filter): Query<TransactionFilter>,
) -> Result<axum::Json<Page<TransactionView>>, ApiError> {
    Ok(axum::Json(state.wallet.transactions(&who, filter).await?))
}

/// `?limit=&cursor=`.
async fn list_recharges(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(request): Query<PageRequest>,
) -> Result<axum::Json<Page<RechargeView>>, ApiError> {
    Ok(axum::Json(state.wallet.recharges(&who, request).await?))
}
