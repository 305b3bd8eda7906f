//! Meta's Graph API error envelope:
//! `{"error":{message, type, code, error_subcode?, error_data?:{messaging_product, details}, is_transient?, fbtrace_id}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::ids;

/// One refusal, answered in Meta's shape and HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: i64,
    pub kind: &'static str,
    pub message: String,
    pub details: Option<String>,
    /// The rarer fields, boxed to keep `Result<_, GraphError>` small.
    pub extra: Option<Box<Extra>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extra {
    pub subcode: Option<i64>,
    pub is_transient: Option<bool>,
    pub user_title: Option<String>,
    pub user_msg: Option<String>,
}

impl GraphError {
    fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            kind: "OAuthException",
            message: message.into(),
            details: None,
            extra: None,
        }
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    #[cfg(test)]
    pub fn subcode(&self) -> Option<i64> {
        self.extra.as_ref().and_then(|x| x.subcode)
    }

    fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// Wrong or missing Bearer token.
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        )
    }

    /// A node (phone number, WABA, template) this token cannot see.
    pub fn unknown_object(id: &str) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            100,
            format!(
                "Unsupported request - method type: post. Object with ID '{id}' does not exist, \
                 cannot be loaded due to missing permissions, or does not support this operation."
            ),
        );
        e.kind = "GraphMethodException";
        e.extra_mut().subcode = Some(33);
        e
    }

    pub fn unknown_path(path: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            2500,
            format!("Unknown path components: {path}"),
        )
    }

    pub fn missing_parameter(field: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            100,
            format!("(#100) The parameter {field} is required."),
        )
        .with_details(format!("The parameter {field} is required."))
    }

    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter").with_details(details)
    }

    pub fn template_not_found(name: &str, language: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            132001,
            "(#132001) Template name does not exist in the translation",
        )
        .with_details(format!(
            "template name ({name}) does not exist in {language}"
        ))
    }

    pub fn parameter_count_mismatch(got: usize, expected: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132000,
            "(#132000) Number of parameters does not match the expected number of params",
        )
        .with_details(format!(
            "body: number of localizable_params ({got}) does not match the expected number of params ({expected})"
        ))
    }

    pub fn throughput_exceeded() -> Self {
        Self::new(StatusCode::BAD_REQUEST, 130429, "(#130429) Rate limit hit")
            .with_details("Cloud API message throughput has been reached.")
    }

    pub fn pair_rate_limited() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            131056,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        )
        .with_details(
            "Message failed to send because there were too many messages sent from this phone \
             number to the same phone number in a short period of time.",
        )
    }

    /// Code 1 (500, unknown error) or 2 (503, service unavailable); both retryable.
    pub fn transient(service_unavailable: bool) -> Self {
        let mut e = if service_unavailable {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                2,
                "An unexpected error has occurred. Please retry your request later.",
            )
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                1,
                "An unknown error has occurred.",
            )
        };
        e.extra_mut().is_transient = Some(true);
        e
    }

    /// Same name and language already exist on the WABA.
    pub fn template_exists(language: &str) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
        let extra = e.extra_mut();
        extra.subcode = Some(2388024);
        extra.is_transient = Some(false);
        extra.user_title = Some("Content in This Language Already Exists".to_owned());
        extra.user_msg = Some(format!(
            "There is already {language} content for this template. You can create a new \
             template and try again."
        ));
        e
    }

    pub fn control_not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            100,
            format!("(#100) {what} not found"),
        )
    }

    fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), json!(self.message));
        error.insert("type".into(), json!(self.kind));
        error.insert("code".into(), json!(self.code));
        if let Some(extra) = &self.extra {
            if let Some(subcode) = extra.subcode {
                error.insert("error_subcode".into(), json!(subcode));
            }
            if let Some(transient) = extra.is_transient {
                error.insert("is_transient".into(), json!(transient));
            }
            if let Some(title) = &extra.user_title {
                error.insert("error_user_title".into(), json!(title));
            }
            if let Some(msg) = &extra.user_msg {
                error.insert("error_user_msg".into(), json!(msg));
            }
        }
        if let Some(details) = &self.details {
            error.insert(
                "error_data".into(),
                json!({"messaging_product": "whatsapp", "details": details}),
            );
        }
        error.insert("fbtrace_id".into(), json!(ids::fbtrace_id()));
        json!({ "error": error })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_matches_metas_shape() {
        let body = GraphError::parameter_count_mismatch(0, 1).body();
        let error = &body["error"];
        assert_eq!(error["code"], 132000);
        assert_eq!(error["type"], "OAuthException");
        assert_eq!(error["error_data"]["messaging_product"], "whatsapp");
        assert!(error["fbtrace_id"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(error.get("error_subcode").is_none());
        let transient = GraphError::transient(true).body();
        assert_eq!(transient["error"]["is_transient"], true);
        assert_eq!(transient["error"]["code"], 2);
    }
}
