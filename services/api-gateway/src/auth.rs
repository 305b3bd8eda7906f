//! Authentication and authorisation before any handler runs.
//!
//! [`require_user`] is the middleware on every authenticated route. It takes one credential:
//!
//! - an access JWT (`Authorization: Bearer eyJ…`): signature, algorithm and expiry are checked
//!   here, and the request gets the [`Principal`] and `Caller::User`; that the user is still
//!   active with that role is checked when the service opens the request's tenant transaction
//!   (`kloyst_db::begin_as_user`, no extra round trip);
//! - a vendor API key (`Authorization: Bearer kly_…` or `X-Api-Key: kly_…`): looked up (one
//!   statement) and the request gets `Caller::ApiKey` only, no [`Principal`], so that
//!   [`AuthUser`] and [`AdminUser`] refuse it (403 `api_key_not_allowed`) and only the routes
//!   that take an [`AuthCaller`] and the key's scope serve it.
//!
//! The vendor id a handler works with comes from here, never from the request.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kloyst_http::ApiError;
use kloyst_identity::{ApiScope, Caller, Principal, Role};

use crate::state::AppState;

/// The header integrations may send their key in instead of `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";
/// How every API key starts (and no JWT does: a JWT starts with its base64 header, `eyJ`).
const API_KEY_START: &str = "kly_";

/// The one credential a request presents.
#[derive(Debug, PartialEq, Eq)]
enum Credential {
    /// The whole `Authorization` value (`authenticate` reads the `Bearer` scheme itself).
    Jwt(String),
    ApiKey(String),
}

pub async fn require_user(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let credential = match credential(req.headers()) {
        Ok(credential) => credential,
        Err(error) => return unauthenticated(error),
    };
    match credential {
        Credential::Jwt(header) => match state.identity.verify_access_token(&header) {
            Ok(principal) => {
                req.extensions_mut().insert(Caller::User(principal.clone()));
                req.extensions_mut().insert(principal);
                next.run(req).await
            }
            Err(error) => unauthenticated(ApiError::from(error)),
        },
        Credential::ApiKey(key) => match state.identity.authenticate_api_key(&key).await {
            Ok(key) => {
                req.extensions_mut().insert(Caller::ApiKey(key));
                next.run(req).await
            }
            Err(error) => unauthenticated(ApiError::from(error)),
        },
    }
}

/// Which credential the request carries. Both headers at once is refused rather than
/// guessed between: a proxy adding one must not silently change who the caller is.
fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match (header(AUTHORIZATION.as_str()), header(API_KEY_HEADER)) {
        (Some(_), Some(_)) => Err(ApiError::unauthorized(
            "send one credential: either Authorization or X-Api-Key, not both",
        )
        .with_code("ambiguous_credentials")),
        (None, Some(key)) => Ok(Credential::ApiKey(key.to_owned())),
        (Some(authorization), None) => {
            let token = match authorization.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => {
                    authorization.get(7..).unwrap_or_default().trim_start()
                }
                _ => authorization,
            };
            if token.starts_with(API_KEY_START) {
                Ok(Credential::ApiKey(token.to_owned()))
            } else {
                Ok(Credential::Jwt(authorization.to_owned()))
            }
        }
        (None, None) => Err(ApiError::unauthorized(
            "a bearer token or an API key is required",
        )),
    }
}

/// 401s say how to authenticate (RFC 6750); other failures (a 500 of the key lookup) are
/// passed on as they are.
fn unauthenticated(error: ApiError) -> Response {
    let is_401 = error.status() == StatusCode::UNAUTHORIZED;
    let mut response = error.into_response();
    if is_401 {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The answer of a user-only route to a request made with an API key.
fn api_key_not_allowed() -> ApiError {
    ApiError::forbidden(
        "this route needs a signed-in user; API keys may call only the integration routes \
         (/v1/messages) that their scopes allow",
    )
    .with_code("api_key_not_allowed")
}

/// Any logged-in user of a vendor.
#[derive(Clone, Debug)]
pub struct AuthUser(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(AuthUser(principal.clone()));
        }
        if let Some(Caller::ApiKey(_)) = parts.extensions.get::<Caller>() {
            return Err(api_key_not_allowed());
        }
        // Only reachable if a route was mounted outside `require_user`: a bug, but a safe
        // one (401, never an unauthenticated pass).
        Err(ApiError::unauthorized("a bearer token is required"))
    }
}

/// A vendor's ADMIN: money, team, profile and API-key changes. STAFF get 403, and so do
/// API keys (`api_key_not_allowed`, from [`AuthUser`]).
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

/// A user (JWT) or a vendor API key: the routes integrations call. The middleware puts a
/// [`Caller`] in every authenticated request; a key's scope is checked by [`AuthCaller::require`].
#[derive(Clone, Debug)]
pub struct AuthCaller(pub Caller);

impl AuthCaller {
    /// The caller, if it may do what `scope` names; 403 `scope_missing` otherwise.
    pub fn require(self, scope: ApiScope) -> Result<Caller, ApiError> {
        if self.0.allows(scope) {
            Ok(self.0)
        } else {
            Err(
                ApiError::forbidden(format!("this API key lacks the scope {}", scope.as_str()))
                    .with_code("scope_missing"),
            )
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(AuthCaller(caller.clone()));
        }
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(|principal| AuthCaller(Caller::User(principal)))
            .ok_or_else(|| ApiError::unauthorized("a bearer token or an API key is required"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    const KEY: &str = "kly_abcdefABCDEF_0123456789abcdefghijABCDEFGHIJ0123456789";

    #[test]
    fn a_key_is_told_from_a_jwt_by_its_start() {
        for (pairs, expected) in [
            (
                vec![("authorization", format!("Bearer {KEY}"))],
                Credential::ApiKey(KEY.to_owned()),
            ),
            (
                vec![("authorization", format!("bearer   {KEY} "))],
                Credential::ApiKey(KEY.to_owned()),
            ),
            (
                vec![("x-api-key", format!(" {KEY}"))],
                Credential::ApiKey(KEY.to_owned()),
            ),
            // Whatever comes in X-Api-Key is a key (the lookup refuses garbage).
            (
                vec![("x-api-key", "eyJ.x.y".to_owned())],
                Credential::ApiKey("eyJ.x.y".to_owned()),
            ),
            (
                vec![("authorization", "Bearer eyJ.x.y".to_owned())],
                Credential::Jwt("Bearer eyJ.x.y".to_owned()),
            ),
        ] {
            let pairs: Vec<(&'static str, &str)> =
                pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(credential(&headers(&pairs)).unwrap(), expected);
        }
    }

    #[test]
    fn none_or_both_are_refused() {
        let none = credential(&headers(&[("authorization", "  ")])).unwrap_err();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        let both = credential(&headers(&[
            ("authorization", "Bearer eyJ.x.y"),
            ("x-api-key", KEY),
        ]))
        .unwrap_err();
        assert_eq!(both.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(both.code(), "ambiguous_credentials");
    }
}
