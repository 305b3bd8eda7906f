//! `/v1/contacts/bulk` and `/v1/contacts/imports`: bulk JSON imports (answered inline) and
//! CSV uploads (stored and answered at once with 202 and an import job), for any role.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use futures::{stream, Stream};
use kloyst_contacts::model::{
    BulkRow, ImportJobView, ImportOptions, Page, PageRequest, Rejection, RejectionsRequest,
};
use kloyst_http::extract::{parse_json, Path, Query};
use kloyst_http::ApiError;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::meta::Meta;
use crate::state::AppState;

/// A JSON bulk body holds at most 5,000 rows: this is ample for them.
const JSON_BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/contacts/bulk",
            // The CSV path enforces IMPORT_MAX_BYTES itself while streaming.
            post(bulk).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/contacts/imports", get(list))
        .route("/v1/contacts/imports/{id}", get(show))
        .route("/v1/contacts/imports/{id}/rejections", get(rejections))
}

/// Dispatches on the content type: a JSON array, a CSV body, or a multipart form whose
/// `file` part is the CSV.
async fn bulk(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Query(options): Query<ImportOptions>,
    request: Request,
) -> Result<Response, ApiError> {
    let content_type = media_type(request.headers());
    match content_type.as_deref() {
        Some("application/json") => {
            let bytes = axum::body::to_bytes(request.into_body(), JSON_BODY_LIMIT)
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "a JSON bulk body is at most 16 MiB; upload a CSV file for more",
                    )
                })?;
            let rows: Vec<BulkRow> = parse_json(&bytes)?;
            let result = state.contacts.import_json(&who, options, rows, &meta).await?;
            Ok(axum::Json(result).into_response())
        }
        Some("text/csv" | "application/csv" | "text/plain") => {
            let body = request.into_body().into_data_stream();
            let job = state
                .contacts
                .import_csv(&who, options, content_type.as_deref(), body, &meta)
                .await?;
            Ok(accepted(job))
        }
        Some("multipart/form-data") => {
            let mut form = Multipart::from_request(request, &state)
                .await
                .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
            let file = loop {
                let field = form
                    .next_field()
                    .await
                    .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
                match field {
                    Some(field) if field.name() == Some("file") => break field,
                    Some(_) => continue,
                    None => {
                        return Err(ApiError::unprocessable(vec![kloyst_core::FieldError::new(
                            "file",
                            "required",
                            "the form needs a `file` part holding the CSV",
                        )]))
                    }
                }
            };
            let mut options = options;
            if options.file_name.is_none() {
                options.file_name = file.file_name().map(str::to_owned);
            }
            let body = field_stream(file);
            let job = state
                .contacts
                .import_csv(&who, options, Some("text/csv"), body, &meta)
                .await?;
            Ok(accepted(job))
        }
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json (up to 5,000 rows), text/csv, or multipart/form-data with a `file` part",
        )),
    }
}

/// The lower-cased media type without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(essence).filter(|e| !e.is_empty())
}

fn accepted(job: ImportJobView) -> Response {
    let location = HeaderValue::from_str(&format!("/v1/contacts/imports/{}", job.id)).ok();
    let mut response = (StatusCode::ACCEPTED, axum::Json(job)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// A multipart field as a byte stream.
fn field_stream(
    field: axum::extract::multipart::Field<'_>,
) -> impl Stream<Item = Result<Bytes, axum::extract::multipart::MultipartError>> + Unpin + Send + '_
{
    Box::pin(stream::unfold(field, |mut field| async move {
        match field.chunk().await {
            Ok(Some(bytes)) => Some((Ok(bytes), field)),
            Ok(None) => None,
            Err(error) => Some((Err(error), field)),
        }
    }))
}

async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(page): Query<PageRequest>,
) -> Result<axum::Json<Page<ImportJobView>>, ApiError> {
    Ok(axum::Json(state.contacts.import_jobs(&who, page).await?))
}

async fn show(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ImportJobView>, ApiError> {
    Ok(axum::Json(state.contacts.import_job(&who, id).await?))
}

/// JSON pages by default; `?format=csv` (or `Accept: text/csv`) downloads every rejected
/// row as a CSV the vendor can fix and upload again.
async fn rejections(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<Uuid>,
    Query(request): Query<RejectionsRequest>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let wants_csv = match request.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => {
            return Err(ApiError::unprocessable(vec![kloyst_core::FieldError::new(
                "format",
                "invalid",
                "json or csv",
            )]))
        }
        None => headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
    };
    if !wants_csv {
        let page = state
            .contacts
            .import_rejections(&who, id, request.limit, request.cursor.as_deref())
            .await?;
        return Ok(axum::Json(page).into_response());
    }
    // The first page is read before answering, so that a missing import is a 404; the
    // rest is streamed page by page (a file of a million bad rows is never held whole).
    let first = state
        .contacts
        .import_rejections(&who, id, Some(10_000), request.cursor.as_deref())
        .await?;
    let contacts = state.contacts.clone();
    let pages = stream::unfold(
        (Some(first), String::from("row,raw,reason,message\r\n")),
        move |(page, header)| {
            let contacts = contacts.clone();
            let who = who.clone();
            async move {
                let page = page?;
                let mut csv = header;
                for rejection in &page.data {
                    push_csv_line(&mut csv, rejection);
                }
                let next = match page.next_cursor {
                    None => None,
                    Some(cursor) => {
                        match contacts
                            .import_rejections(&who, id, Some(10_000), Some(&cursor))
                            .await
                        {
                            Ok(next) => Some(next),
                            Err(error) => {
                                tracing::error!(%error, "rejections download cut short");
                                return Some((
                                    Err(std::io::Error::other(error.to_string())),
                                    (None, String::new()),
                                ));
                            }
                        }
                    }
                };
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(csv)),
                    (next, String::new()),
                ))
            }
        },
    );
    let mut response = (StatusCode::OK, Body::from_stream(pages)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"rejections-{id}.csv\""))
    {
        headers.insert(CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

fn push_csv_line(csv: &mut String, rejection: &Rejection) {
    let quote = |value: &str| format!("\"{}\"", value.replace('"', "\"\""));
    csv.push_str(&rejection.row.to_string());
    csv.push(',');
    csv.push_str(&quote(&rejection.raw));
    csv.push(',');
    csv.push_str(&quote(&rejection.reason));
    csv.push(',');
    csv.push_str(&quote(&rejection.message));
    csv.push_str("\r\n");
}
