//! Authentication and authorisation before any handler runs.
//!
//! [`require_user`] is the middleware on every authenticated route: it checks the bearer
//! token (signature, algorithm, expiry) and puts the [`Principal`] in the request; that
//! the user is still active with that role is checked when the service opens the request's
//! tenant transaction (`kloyst_db::begin_as_user`, no extra round trip); [`AuthUser`] and [`AdminUser`] hand it to the
//! handler. The vendor id a handler works with comes from here, never from the request.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kloyst_http::ApiError;
use kloyst_identity::{Principal, Role};

use crate::state::AppState;

pub async fn require_user(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // `authenticate` reads the `Bearer` scheme itself.
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let Some(header) = header else {
        return unauthenticated(ApiError::unauthorized("a bearer token is required"));
    };
    match state.identity.verify_access_token(header) {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(error) => unauthenticated(ApiError::from(error)),
    }
}

/// 401s say how to authenticate (RFC 6750).
fn unauthenticated(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Any logged-in user of a vendor.
#[derive(Clone, Debug)]
pub struct AuthUser(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(AuthUser)
            // Only reachable if a route was mounted outside `require_user`: a bug, but a
            // safe one (401, never an unauthenticated pass).
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))
    }
}

/// A vendor's ADMIN: money, team and profile changes. STAFF get 403.
#[derive(Clone, Debug)]
pub struct AdminUser(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AuthUser(principal) = AuthUser::from_request_parts(parts, state).await?;
        if principal.role == Role::Admin {
            Ok(AdminUser(principal))
        } else {
            Err(ApiError::forbidden("this action needs the ADMIN role").with_code("admin_only"))
        }
    }
}
