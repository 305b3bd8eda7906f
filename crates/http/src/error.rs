//! One error type for every HTTP answer that is not a success, rendered as RFC 9457
//! `application/problem+json` in exactly one place ([`IntoResponse for ApiError`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kloyst_core::{DomainError, ErrorClass};
use serde::Serialize;
use serde_json::{Map, Value};

pub const PROBLEM_JSON: &str = "application/problem+json";
const TYPE_BASE: &str = "https://docs.kloyst.com/problems/";

pub use kloyst_core::FieldError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// Stable, machine-readable; clients switch on it. Also the last segment of `type`.
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    retry_after_secs: Option<u64>,
    extensions: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            extensions: Map::new(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// Also the answer for another tenant's object: it must not reveal that it exists.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unprocessable(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
        .with_errors(errors)
    }

    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests; retry in {retry_after_secs} s"),
        );
        error.retry_after_secs = Some(retry_after_secs);
        error
    }

    pub fn service_unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// A failure that is ours. Logged once here, with the request's span (and so its
    /// request id); the client learns nothing about internals.
    pub fn internal(source: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %source, "request failed with an internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the server could not complete the request; it has been logged",
        )
    }

    /// The same answer with a more specific code (e.g. `admin_only` for a 403).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// An extension member of the problem object (RFC 9457 §3.2).
    pub fn with_extension(mut self, key: &str, value: Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(flatten)]
    extensions: &'a Map<String, Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            type_uri: format!("{TYPE_BASE}{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            code: self.code,
            detail: &self.detail,
            errors: &self.errors,
            extensions: &self.extensions,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Any domain error: its class picks the status, its code and message go to the client,
/// except for internal errors, which are logged and answered without detail.
impl<E: DomainError> From<E> for ApiError {
    fn from(error: E) -> Self {
        let detail = error.to_string();
        match error.class() {
            ErrorClass::BadRequest => Self::bad_request(error.code(), detail),
            ErrorClass::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, error.code(), detail)
            }
            ErrorClass::Forbidden => Self::new(StatusCode::FORBIDDEN, error.code(), detail),
            ErrorClass::NotFound => Self::new(StatusCode::NOT_FOUND, error.code(), detail),
            ErrorClass::Conflict => Self::conflict(error.code(), detail),
            ErrorClass::InsufficientFunds => {
                Self::new(StatusCode::PAYMENT_REQUIRED, error.code(), detail)
            }
            ErrorClass::PayloadTooLarge => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, error.code(), detail)
            }
            ErrorClass::Invalid => {
                let mut problem = Self::unprocessable(error.field_errors());
                problem.code = error.code();
                problem
            }
            ErrorClass::RateLimited { retry_after_secs } => {
                let mut problem = Self::too_many_requests(retry_after_secs);
                problem.code = error.code();
                problem.detail = detail;
                problem
            }
            ErrorClass::Unavailable { retry_after_secs } => {
                tracing::warn!(error = %detail, "a provider is unavailable; answered 503");
                let mut problem = Self::service_unavailable(error.code(), detail);
                problem.retry_after_secs = Some(retry_after_secs);
                problem
            }
            ErrorClass::Internal => Self::internal(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(error: ApiError) -> (StatusCode, String, Value) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn problem_shape() {
        let (status, content_type, body) = render(ApiError::unprocessable(vec![FieldError::new(
            "email",
            "invalid_email",
            "not an email address",
        )]))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(
            body["type"],
            "https://docs.kloyst.com/problems/validation_failed"
        );
        assert_eq!(body["title"], "Unprocessable Entity");
        assert_eq!(body["status"], 422);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["errors"][0]["field"], "email");
        assert_eq!(body["detail"], "email: not an email address");
    }

    #[derive(Debug, thiserror::Error)]
    enum OtpError {
        #[error("too many codes requested; wait a minute")]
        Cooldown,
        #[error("the password is too short")]
        WeakPassword,
    }

    impl DomainError for OtpError {
        fn class(&self) -> ErrorClass {
            match self {
                Self::Cooldown => ErrorClass::RateLimited {
                    retry_after_secs: 42,
                },
                Self::WeakPassword => ErrorClass::Invalid,
            }
        }

        fn code(&self) -> &'static str {
            match self {
                Self::Cooldown => "otp_cooldown",
                Self::WeakPassword => "weak_password",
            }
        }

        fn field_errors(&self) -> Vec<FieldError> {
            vec![FieldError::new(
                "password",
                "too_short",
                "at least 10 characters",
            )]
        }
    }

    #[tokio::test]
    async fn domain_errors_map_by_class() {
        let response = ApiError::from(OtpError::Cooldown).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        let (status, _, body) = render(ApiError::from(OtpError::WeakPassword)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "weak_password");
        assert_eq!(body["errors"][0]["field"], "password");
    }

    #[tokio::test]
    async fn retry_after_header() {
        let response = ApiError::too_many_requests(7).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[tokio::test]
    async fn internal_errors_hide_the_cause() {
        let (status, _, body) = render(ApiError::internal(&"password=hunter2 leaked")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("hunter2"));
    }
}
