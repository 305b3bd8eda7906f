//! `/v1/contacts` (the directory) and `/v1/contact-lists`. Any role of the vendor may read
//! and change them: contacts and lists are day-to-day work.
//!
//! Query strings are read parameter by parameter so that every mistake is a 422 naming the
//! parameter: an unknown one (`unknown_field`), one given twice (`duplicate`), or a value of
//! the wrong type (`invalid_type`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use kloyst_contacts::model::{
    ContactFilter, ContactListView, ContactPatch, ContactView, ListMembersInput, MembersAdded,
    MembersRemoved, NewContactList, Page, PageRequest,
};
use kloyst_http::extract::{Json, Path, Query};
use kloyst_http::{ApiError, FieldError};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::meta::Meta;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/contacts", get(list_contacts))
        .route(
            "/v1/contacts/{id}",
            get(show_contact)
                .patch(update_contact)
                .delete(delete_contact),
        )
        .route("/v1/contact-lists", get(list_lists).post(create_list))
        .route("/v1/contact-lists/{id}", get(show_list).delete(delete_list))
        .route(
            "/v1/contact-lists/{id}/members",
            post(add_members).delete(remove_members),
        )
}

/// `?limit=&cursor=&list_id=&name_prefix=&mobile_prefix=&opted_out=`
async fn list_contacts(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Page<ContactView>>, ApiError> {
    let mut params = Params::new(
        query,
        &[
            "limit",
            "cursor",
            "list_id",
            "name_prefix",
            "mobile_prefix",
            "opted_out",
        ],
    )?;
    let filter = ContactFilter {
        limit: params.parse("limit", "a whole number between 1 and 200")?,
        cursor: params.take("cursor"),
        list_id: params.parse("list_id", "a list id (UUID)")?,
        name_prefix: params.take("name_prefix"),
        mobile_prefix: params.take("mobile_prefix"),
        opted_out: params.parse("opted_out", "true or false")?,
    };
    Ok(axum::Json(
        state.contacts.list_contacts(&who, filter).await?,
    ))
}

async fn show_contact(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ContactView>, ApiError> {
    Ok(axum::Json(state.contacts.get_contact(&who, id).await?))
}

async fn update_contact(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
    Json(patch): Json<ContactPatch>,
) -> Result<axum::Json<ContactView>, ApiError> {
    let contact = state
        .contacts
        .update_contact(&who, id, patch, &meta)
        .await?;
    Ok(axum::Json(contact))
}

async fn delete_contact(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.contacts.delete_contact(&who, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?limit=&cursor=`
async fn list_lists(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<axum::Json<Page<ContactListView>>, ApiError> {
    let mut params = Params::new(query, &["limit", "cursor"])?;
    let page = PageRequest {
        limit: params.parse("limit", "a whole number between 1 and 200")?,
        cursor: params.take("cursor"),
    };
    Ok(axum::Json(state.contacts.list_lists(&who, page).await?))
}

async fn create_list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Json(input): Json<NewContactList>,
) -> Result<(StatusCode, axum::Json<ContactListView>), ApiError> {
    let list = state.contacts.create_list(&who, input, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(list)))
}

async fn show_list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ContactListView>, ApiError> {
    Ok(axum::Json(state.contacts.get_list(&who, id).await?))
}

async fn delete_list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.contacts.delete_list(&who, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_members(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
    Json(input): Json<ListMembersInput>,
) -> Result<axum::Json<MembersAdded>, ApiError> {
    let added = state
        .contacts
        .add_list_members(&who, id, input, &meta)
        .await?;
    Ok(axum::Json(added))
}

async fn remove_members(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Meta(meta): Meta,
    Path(id): Path<Uuid>,
    Json(input): Json<ListMembersInput>,
) -> Result<axum::Json<MembersRemoved>, ApiError> {
    let removed = state
        .contacts
        .remove_list_members(&who, id, input, &meta)
        .await?;
    Ok(axum::Json(removed))
}

/// The decoded parameters of a query string, each known name at most once.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(pairs: Vec<(String, String)>, known: &[&str]) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                errors.push(FieldError::new(
                    name.clone(),
                    "unknown_field",
                    format!(
                        "unknown query parameter `{name}`; expected one of: {}",
                        known.join(", ")
                    ),
                ));
            } else if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
                errors.push(FieldError::new(
                    name.clone(),
                    "duplicate",
                    "this parameter is given more than once",
                ));
            }
        }
        if errors.is_empty() {
            Ok(Self(pairs))
        } else {
            Err(ApiError::unprocessable(errors))
        }
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(at).1)
    }

    fn parse<T: std::str::FromStr>(
        &mut self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(raw) => raw.trim().parse().map(Some).map_err(|_| {
                ApiError::unprocessable(vec![FieldError::new(
                    name,
                    "invalid_type",
                    format!("expected {expected}"),
                )])
            }),
        }
    }
}
