//! The `Idempotency-Key` request header and the answer to a retried key, shared by the
//! routes that create money or messages (recharge, launch). The services store the key with
//! what they create; this only reads the header and marks a replayed answer.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kloyst_http::ApiError;
use serde::Serialize;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer replayed for a retried Idempotency-Key.
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The header's value, if any (the services check its length and characters).
pub fn key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get(IDEMPOTENCY_KEY)
        .map(|value| {
            value.to_str().map_err(|_| {
                ApiError::bad_request(
                    "idempotency_key_invalid",
                    "Idempotency-Key must be printable ASCII",
                )
            })
        })
        .transpose()
}

/// `first` (201, 202 …) for a new resource; 200 with `Idempotent-Replayed: true` for the
/// answer to a retried key.
pub fn answer(first: StatusCode, replayed: bool, body: impl Serialize) -> Response {
    let status = if replayed { StatusCode::OK } else { first };
    let mut response = (status, axum::Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}
