//! The identity lists' cursors: (created_at, id) of the last row of a page, in the shared
//! format of `kloyst_core::page`.

use chrono::{DateTime, Utc};
use kloyst_core::page;
use uuid::Uuid;

use crate::error::IdentityError;
use crate::model::PageRequest;

/// Where a page starts: after the row with this (created_at, id).
pub(crate) type Position = (DateTime<Utc>, Uuid);

pub(crate) fn encode(created_at: DateTime<Utc>, id: Uuid) -> String {
    page::encode_time_id(created_at, id)
}

/// The page size and decoded position of a request: limit 1–200 (default 50, larger
/// values capped), and an optional cursor.
pub(crate) fn parse(request: &PageRequest) -> Result<(u32, Option<Position>), IdentityError> {
    let invalid = |field| IdentityError::Invalid(vec![field]);
    let limit = request.limit().map_err(invalid)?;
    let position = request
        .cursor
        .as_deref()
        .map(page::decode_time_id)
        .transpose()
        .map_err(invalid)?;
    Ok((limit, position))
}
