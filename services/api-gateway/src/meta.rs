//! Where a request came from, for the audit log and per-IP limits.

use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use kloyst_audit::RequestMeta;
use kloyst_http::middleware::REQUEST_ID_HEADER;
use kloyst_ratelimit::TrustedProxies;

/// The request id, the client's IP (through trusted proxies only) and its user agent.
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // Put there by the router; without it no forwarded header is believed.
        let trusted = parts
            .extensions
            .get::<TrustedProxies>()
            .cloned()
            .unwrap_or_else(TrustedProxies::none);
        Ok(Meta(RequestMeta {
            request_id: header(REQUEST_ID_HEADER),
            ip: kloyst_ratelimit::client_ip(parts, &trusted),
            user_agent: header(USER_AGENT),
        }))
    }
}
