//! `/webhook/meta`: Meta's verification handshake and its signed notifications. A POST is
//! verified over its raw bytes, stored in the inbox, and only then acknowledged; processing
//! happens later (see `processing`).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kloyst_config::Secret;
use kloyst_http::error::ApiError;
use kloyst_http::middleware::REQUEST_ID_HEADER;
use kloyst_inbox::{InboxWriter, NewWebhook, Source};
use kloyst_meta::signature;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// Headers kept with the body: enough to re-verify and to trace a delivery.
const KEPT_HEADERS: [&str; 3] = [signature::HEADER, "content-type", "user-agent"];
/// Meta's challenge is a short number; anything longer is not Meta.
const MAX_CHALLENGE_LEN: usize = 256;

#[derive(Clone)]
pub struct MetaIntake {
    pub app_secret: Secret<String>,
    pub verify_token: Secret<String>,
    pub inbox: InboxWriter,
}

pub fn routes(intake: MetaIntake) -> Router {
    Router::new()
        .route("/webhook/meta", get(handshake).post(receive))
        .with_state(intake)
}

/// `GET /webhook/meta?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: answers the
/// challenge as plain text when the token is ours.
async fn handshake(State(intake): State<MetaIntake>, RawQuery(query): RawQuery) -> Response {
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "hub.mode" => mode = Some(value.into_owned()),
            "hub.verify_token" => token = Some(value.into_owned()),
            "hub.challenge" => challenge = Some(value.into_owned()),
            _ => {}
        }
    }
    if mode.as_deref() != Some("subscribe") {
        return ApiError::forbidden("hub.mode must be subscribe")
            .with_code("handshake_refused")
            .into_response();
    }
    let expected = intake.verify_token.expose().as_bytes();
    let token_matches = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected)));
    if !token_matches {
        return ApiError::forbidden("hub.verify_token does not match")
            .with_code("handshake_refused")
            .into_response();
    }
    match challenge {
        Some(challenge) if !challenge.is_empty() && challenge.len() <= MAX_CHALLENGE_LEN => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response(),
        _ => ApiError::bad_request(
            "handshake_challenge_missing",
            "hub.challenge is required (at most 256 characters)",
        )
        .into_response(),
    }
}

/// `POST /webhook/meta`: 401 and nothing stored unless the signature matches the raw body;
/// 200 once the body is committed to the inbox; 503 when it could not be stored (Meta
/// retries).
async fn receive(State(intake): State<MetaIntake>, headers: HeaderMap, body: Bytes) -> Response {
    let claimed = headers.get(signature::HEADER).map(|v| v.as_bytes());
    if let Err(refusal) = signature::verify(intake.app_secret.expose().as_bytes(), claimed, &body) {
        metrics::counter!("webhook_signature_refusals_total", "source" => "META").increment(1);
        return ApiError::unauthorized(refusal.to_string())
            .with_code("signature_invalid")
            .into_response();
    }
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let webhook = NewWebhook::deduplicated_by_body(
        Source::Meta,
        kept_headers(&headers, &KEPT_HEADERS),
        body,
        request_id,
    );
    match intake.inbox.store(webhook).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(error) => {
            tracing::error!(%error, "a Meta webhook could not be stored; answered 503");
            ApiError::service_unavailable(
                "inbox_unavailable",
                "the webhook could not be stored; retry later",
            )
            .into_response()
        }
    }
}

/// The `names` headers of a request as a JSON object (kept with the stored body).
pub(crate) fn kept_headers(headers: &HeaderMap, names: &[&str]) -> Value {
    let kept: Map<String, Value> = names
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), Value::String(value.to_owned())))
        })
        .collect();
    Value::Object(kept)
}
