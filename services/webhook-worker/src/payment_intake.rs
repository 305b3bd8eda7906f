//! `POST /webhook/payment`: Razorpay's signed webhooks. Verified over the raw bytes with
//! `RAZORPAY_WEBHOOK_SECRET` (or, during a rotation, `RAZORPAY_WEBHOOK_SECRET_PREVIOUS`),
//! stored in the inbox under the event's `x-razorpay-event-id`, and only then acknowledged
//! (Razorpay times out after 5 s; the insert takes milliseconds). Processing happens later.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use kloyst_config::Secret;
use kloyst_http::error::ApiError;
use kloyst_http::middleware::REQUEST_ID_HEADER;
use kloyst_inbox::{InboxWriter, NewWebhook, Source};
use kloyst_payments::signature::{self, EVENT_ID_HEADER, WEBHOOK_HEADER};

use crate::meta_intake::kept_headers;

const KEPT_HEADERS: [&str; 4] = [
    WEBHOOK_HEADER,
    EVENT_ID_HEADER,
    "content-type",
    "user-agent",
];
/// Razorpay's event ids are short (`evt_` + 14); anything odd falls back to the body hash.
const MAX_EVENT_ID_LEN: usize = 100;

#[derive(Clone)]
pub struct PaymentIntake {
    /// The current secret first, then the previous one while a rotation settles.
    pub webhook_secrets: Vec<Secret<String>>,
    pub inbox: InboxWriter,
}

pub fn routes(intake: PaymentIntake) -> Router {
    Router::new()
        .route("/webhook/payment", post(receive))
        .with_state(intake)
}

/// 401 and nothing stored unless the signature matches the raw body; 200 once stored
/// (a redelivered event id is stored once and still answered 200); 503 if it could not be
/// stored (Razorpay retries for 24 hours).
async fn receive(State(intake): State<PaymentIntake>, headers: HeaderMap, body: Bytes) -> Response {
    let claimed = headers.get(WEBHOOK_HEADER).map(|v| v.as_bytes());
    let secrets: Vec<&[u8]> = intake
        .webhook_secrets
        .iter()
        .map(|s| s.expose().as_bytes())
        .collect();
    if let Err(refusal) = signature::verify_webhook(&secrets, claimed, &body) {
        metrics::counter!("webhook_signature_refusals_total", "source" => "RAZORPAY").increment(1);
        return ApiError::unauthorized(format!("X-Razorpay-Signature: {refusal}"))
            .with_code("signature_invalid")
            .into_response();
    }
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let event_id = headers
        .get(EVENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_EVENT_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    let kept = kept_headers(&headers, &KEPT_HEADERS);
    let webhook = match event_id {
        Some(id) => NewWebhook::with_key(
            Source::Razorpay,
            kept,
            body,
            Some(format!("razorpay:event:{id}")),
            request_id,
        ),
        None => NewWebhook::deduplicated_by_body(Source::Razorpay, kept, body, request_id),
    };
    match intake.inbox.store(webhook).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(error) => {
            tracing::error!(%error, "a Razorpay webhook could not be stored; answered 503");
            ApiError::service_unavailable(
                "inbox_unavailable",
                "the webhook could not be stored; retry later",
            )
            .into_response()
        }
    }
}
