//! Opaque list cursors: the (created_at, id) of the last row of a page, as hex. Clients
//! pass them back unchanged; they carry no vendor, so a cursor from another tenant only
//! positions a query that is filtered by the caller's vendor anyway.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::IdentityError;
use crate::model::PageRequest;

/// Where a page starts: after the row with this (created_at, id).
pub(crate) type Position = (DateTime<Utc>, Uuid);

pub(crate) const DEFAULT_LIMIT: u32 = 50;
pub(crate) const MAX_LIMIT: u32 = 200;

pub(crate) fn encode(created_at: DateTime<Utc>, id: Uuid) -> String {
    let mut bytes = Vec::with_capacity(24);
    bytes.extend_from_slice(&created_at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(id.as_bytes());
    hex::encode(bytes)
}

pub(crate) fn decode(cursor: &str) -> Result<Position, IdentityError> {
    let invalid =
        || IdentityError::invalid_field("cursor", "invalid_cursor", "not a cursor of this list");
    let bytes = hex::decode(cursor.trim()).map_err(|_| invalid())?;
    if bytes.len() != 24 {
        return Err(invalid());
    }
    let (micros, id) = bytes.split_at(8);
    let micros = i64::from_be_bytes(micros.try_into().map_err(|_| invalid())?);
    let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = Uuid::from_slice(id).map_err(|_| invalid())?;
    Ok((created_at, id))
}

/// The page size and decoded position of a request: limit 1–200 (default 50, larger
/// values capped), and an optional cursor.
pub(crate) fn parse(page: &PageRequest) -> Result<(u32, Option<Position>), IdentityError> {
    let limit = match page.limit {
        None => DEFAULT_LIMIT,
        Some(0) => {
            return Err(IdentityError::invalid_field(
                "limit",
                "out_of_range",
                format!("must be between 1 and {MAX_LIMIT}"),
            ))
        }
        Some(n) => n.min(MAX_LIMIT),
    };
    let position = page.cursor.as_deref().map(decode).transpose()?;
    Ok((limit, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        let cursor = encode(at, id);
        assert_eq!(decode(&cursor).unwrap(), (at, id));
        for bad in ["", "zz", "00", &cursor[..40]] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits() {
        let req = |limit| PageRequest {
            limit,
            cursor: None,
        };
        assert_eq!(parse(&req(None)).unwrap().0, 50);
        assert_eq!(parse(&req(Some(500))).unwrap().0, 200);
        assert_eq!(parse(&req(Some(7))).unwrap().0, 7);
        assert!(parse(&req(Some(0))).is_err());
    }
}
