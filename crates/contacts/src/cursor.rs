//! Opaque list cursors, as hex. Clients pass them back unchanged; they carry no vendor, so
//! a cursor from another tenant only positions a query that is filtered by the caller's
//! vendor anyway.

use chrono::{DateTime, Utc};
use kloyst_core::page;
use uuid::Uuid;

use crate::error::ContactsError;
use crate::model::PageRequest;

fn invalid() -> ContactsError {
    ContactsError::Invalid(vec![page::invalid_cursor()])
}

/// The page size (1–200, default 50, larger values capped) and the raw cursor.
pub(crate) fn page(request: &PageRequest) -> Result<(u32, Option<String>), ContactsError> {
    let limit = request
        .limit()
        .map_err(|field| ContactsError::Invalid(vec![field]))?;
    Ok((limit, request.cursor.clone()))
}

/// A (created_at, id) position: newest-first lists.
pub(crate) fn encode_time_id(at: DateTime<Utc>, id: Uuid) -> String {
    page::encode_time_id(at, id)
}

pub(crate) fn decode_time_id(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ContactsError> {
    page::decode_time_id(cursor).map_err(|field| ContactsError::Invalid(vec![field]))
}

/// A (chunk seq, index within the chunk) position: rejections of an import.
pub(crate) fn encode_seq_index(seq: i32, index: usize) -> String {
    let mut bytes = Vec::with_capacity(12);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&(index as u64).to_be_bytes());
    page::encode_bytes(&bytes)
}

pub(crate) fn decode_seq_index(cursor: &str) -> Result<(i32, usize), ContactsError> {
    let bytes = page::decode_bytes(cursor).ok_or_else(invalid)?;
    if bytes.len() != 12 {
        return Err(invalid());
    }
    let (seq, index) = bytes.split_at(4);
    let seq = i32::from_be_bytes(seq.try_into().map_err(|_| invalid())?);
    let index = u64::from_be_bytes(index.try_into().map_err(|_| invalid())?);
    if seq < 1 {
        return Err(invalid());
    }
    Ok((seq, usize::try_from(index).map_err(|_| invalid())?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_763_700_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_time_id(&encode_time_id(at, id)).unwrap(), (at, id));
        assert_eq!(
            decode_seq_index(&encode_seq_index(7, 4_999)).unwrap(),
            (7, 4_999)
        );
        for garbage in ["", "zz", "abc", "00", &"0".repeat(200)] {
            assert!(decode_time_id(garbage).is_err(), "{garbage}");
            assert!(decode_seq_index(garbage).is_err(), "{garbage}");
        }
    }
}
