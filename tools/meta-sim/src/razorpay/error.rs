//! Razorpay's error envelope:
//! `{"error":{code, description, source, step, reason, metadata:{}, field}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// One refusal, answered in Razorpay's shape and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RazorpayError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    pub source: &'static str,
    pub step: &'static str,
    pub reason: &'static str,
    pub field: Option<String>,
}

impl RazorpayError {
    /// Wrong or missing Basic auth (Razorpay fills the context fields with `NA`).
    pub fn authentication_failed() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "BAD_REQUEST_ERROR",
            description: "Authentication failed".to_owned(),
            source: "NA",
            step: "NA",
            reason: "NA",
            field: None,
        }
    }

    /// A request field Razorpay would refuse, named in `field`.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_REQUEST_ERROR",
            description: description.into(),
            source: "business",
            step: "payment_initiation",
            reason: "input_validation_failed",
            field: Some(field.to_owned()),
        }
    }

    /// A body that is not a JSON object.
    pub fn bad_body(details: impl std::fmt::Display) -> Self {
        Self {
            field: None,
            ..Self::invalid("", format!("The request body is not valid JSON: {details}"))
        }
    }

    /// `GET /v1/{entity}/{id}` for an id Razorpay never issued.
    pub fn unknown_id() -> Self {
        Self {
            source: "NA",
            step: "NA",
            reason: "NA",
            field: None,
            ..Self::invalid("", "The id provided does not exist")
        }
    }

    /// A `/_sim/razorpay/*` call about something the simulator does not hold.
    pub fn control_not_found(field: &str, id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            source: "NA",
            step: "NA",
            reason: "NA",
            ..Self::invalid(field, format!("the simulator has no {field} {id:?}"))
        }
    }

    /// A `/_sim/razorpay/*` call that cannot be acted on as asked.
    pub fn control_conflict(field: &str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            source: "NA",
            step: "NA",
            reason: "NA",
            ..Self::invalid(field, description)
        }
    }
}

impl IntoResponse for RazorpayError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "description": self.description,
                "source": self.source,
                "step": self.step,
                "reason": self.reason,
                "metadata": {},
                "field": self.field,
            }
        });
        (self.status, Json(body)).into_response()
    }
}
