//! `/v1/wallet`: the vendor's balance, ledger and recharges. Any role of the vendor may read
//! them; calls that move money (recharge) are ADMIN-only and live elsewhere.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use kloyst_billing::{RechargeView, TransactionFilter, TransactionView, WalletView};
use kloyst_core::page::{Page, PageRequest};
use kloyst_http::extract::Query;
use kloyst_http::ApiError;

use crate::auth::AuthUser;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallet/balance", get(show_balance))
        .route("/v1/wallet/transactions", get(list_transactions))
        .route("/v1/wallet/recharges", get(list_recharges))
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
