//! `/v1/contacts` (the directory) and `/v1/contact-lists`. Any role of the vendor may read
//! and change them: contacts and lists are day-to-day work.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use kloyst_contacts::model::{
    ContactFilter, ContactListView, ContactPatch, ContactView, ListMembersInput, MembersAdded,
    MembersRemoved, NewContactList, Page, PageRequest,
};
use kloyst_http::extract::{Json, Path, Query};
use kloyst_http::ApiError;
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
    Query(filter): Query<ContactFilter>,
) -> Result<axum::Json<Page<ContactView>>, ApiError> {
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
    Query(page): Query<PageRequest>,
) -> Result<axum::Json<Page<ContactListView>>, ApiError> {
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
