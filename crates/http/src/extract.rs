//! Extractors that turn every kind of bad input into a 4xx problem+json: the handler only
//! ever sees a well-formed value.

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A JSON body. 415 without a JSON content type, 413 over the body limit, 400 when it is
/// not JSON, 422 naming the field when it is JSON of the wrong shape (including a field
/// the route does not know, for structs marked `#[serde(deny_unknown_fields)]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON document into `T`, with the failing field's path in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => Ok(value),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::bad_request(
                    "malformed_json",
                    format!("the body is not valid JSON: {inner}"),
                ));
            }
            Err(ApiError::unprocessable(vec![field_error(
                &path,
                &inner.to_string(),
            )]))
        }
    }
}

/// serde names an unknown or missing field in backticks inside its message. The path of an
/// unknown field already ends with it; a missing field's path is its parent's.
fn field_error(path: &str, message: &str) -> FieldError {
    let message = strip_position(message);
    let quoted = message.split('`').nth(1).unwrap_or_default();
    let join = |name: &str| match path {
        "." | "" => name.to_owned(),
        parent => format!("{parent}.{name}"),
    };
    if message.starts_with("unknown field") {
        FieldError::new(path, "unknown_field", format!("unknown field `{quoted}`"))
    } else if message.starts_with("missing field") {
        FieldError::new(join(quoted), "required", "this field is required")
    } else if message.starts_with("duplicate field") {
        FieldError::new(
            join(quoted),
            "duplicate",
            "this field is given more than once",
        )
    } else {
        let field = if path == "." {
            "body".to_owned()
        } else {
            path.to_owned()
        };
        FieldError::new(field, "invalid_type", message)
    }
}

/// Drops serde_json's " at line 1 column 42" suffix: noise for an API client.
fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        })
}

/// The body could not be read: too large (413) or cut off by the client (400).
pub fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this route accepts",
        )
    } else {
        ApiError::bad_request("unreadable_body", rejection.body_text())
    }
}

/// Path parameters: a malformed id (e.g. not a UUID) is a 400, never a 500.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection: PathRejection| {
                ApiError::bad_request("invalid_path", rejection.body_text())
            })
    }
}

/// Query string parameters. An unknown parameter (with `deny_unknown_fields`), a missing or
/// a mistyped one is a 422 naming it, like a JSON body's fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Parses a query string into `T`, with the failing parameter in the error.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize::<_, T>(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        ApiError::unprocessable(vec![field_error(&path, &message)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Signup {
        email: String,
        age: u8,
        profile: Option<Profile>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Profile {
        city: String,
    }

    #[test]
    fn syntax_error_is_400() {
        let err = parse_json::<Signup>(b"{\"email\": ").unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.code(), "malformed_json");
    }

    #[test]
    fn unknown_field_is_422_naming_it() {
        let err =
            parse_json::<Signup>(br#"{"email":"a@b.c","age":3,"vendor_id":"x"}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.errors()[0].field, "vendor_id");
        assert_eq!(err.errors()[0].code, "unknown_field");
    }

    #[test]
    fn nested_unknown_and_wrong_type_name_the_path() {
        let err =
            parse_json::<Signup>(br#"{"email":"a","age":3,"profile":{"cty":"x"}}"#).unwrap_err();
        assert_eq!(err.errors()[0].field, "profile.cty");
        let err = parse_json::<Signup>(br#"{"email":"a","age":"old"}"#).unwrap_err();
        assert_eq!(err.errors()[0].field, "age");
        assert_eq!(err.errors()[0].code, "invalid_type");
        assert!(!err.errors()[0].message.contains("line"));
    }

    #[test]
    fn missing_field_is_required() {
        let err = parse_json::<Signup>(br#"{"age":3}"#).unwrap_err();
        assert_eq!(err.errors()[0].field, "email");
        assert_eq!(err.errors()[0].code, "required");
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        headers.insert(
            CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&headers));
        headers.insert(
            CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(is_json(&headers));
        headers.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&headers));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Listing {
        limit: Option<u32>,
        cursor: Option<String>,
    }

    #[test]
    fn query_mistakes_are_422_naming_the_parameter() {
        let cases = [
            ("vendor_id=x", "vendor_id", "unknown_field"),
            ("limit=abc", "limit", "invalid_type"),
            ("limit=1&limit=2", "limit", "duplicate"),
        ];
        for (query, field, code) in cases {
            let err = parse_query::<Listing>(query).unwrap_err();
            assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert_eq!(err.errors()[0].field, field, "{query}");
            assert_eq!(err.errors()[0].code, code, "{query}");
        }
        let listing = parse_query::<Listing>("limit=20&cursor=abc%20d").unwrap();
        assert_eq!(
            (listing.limit, listing.cursor.as_deref()),
            (Some(20), Some("abc d"))
        );
    }
}
