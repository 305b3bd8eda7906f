//! Opaque list cursors, as hex. Clients pass them back unchanged; they carry no vendor, so
//! a cursor from another tenant only positions a query that is filtered by the caller's
//! vendor anyway.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ContactsError;
use crate::model::PageRequest;

pub(crate) const DEFAULT_LIMIT: u32 = 50;
pub(crate) const MAX_LIMIT: u32 = 200;

fn invalid() -> ContactsError {
    ContactsError::invalid_field("cursor", "invalid_cursor", "not a cursor of this list")
}

/// The page size (1–200, default 50, larger values capped) and the raw cursor.
pub(crate) fn page(page: &PageRequest) -> Result<(u32, Option<String>), ContactsError> {
    let limit = match page.limit {
        None => DEFAULT_LIMIT,
        Some(0) => {
            return Err(ContactsError::invalid_field(
                "limit",
                "out_of_range",
                format!("must be between 1 and {MAX_LIMIT}"),
            ))
        }
        Some(n) => n.min(MAX_LIMIT),
    };
    Ok((limit, page.cursor.clone()))
}

/// A (created_at, id) position: newest-first lists.
pub(crate) fn encode_time_id(at: DateTime<Utc>, id: Uuid) -> String {
    let mut bytes = Vec::with_capacity(24);
    bytes.extend_from_slice(&at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(id.as_bytes());
    hex_encode(&bytes)
}

pub(crate) fn decode_time_id(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ContactsError> {
    let bytes = hex_decode(cursor).ok_or_else(invalid)?;
    let (micros, id) = bytes.split_at_checked(8).ok_or_else(invalid)?;
    let micros = i64::from_be_bytes(micros.try_into().map_err(|_| invalid())?);
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = Uuid::from_slice(id).map_err(|_| invalid())?;
    Ok((at, id))
}

/// A (chunk seq, index within the chunk) position: rejections of an import.
pub(crate) fn encode_seq_index(seq: i32, index: usize) -> String {
    let mut bytes = Vec::with_capacity(12);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&(index as u64).to_be_bytes());
    hex_encode(&bytes)
}

pub(crate) fn decode_seq_index(cursor: &str) -> Result<(i32, usize), ContactsError> {
    let bytes = hex_decode(cursor).ok_or_else(invalid)?;
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

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().as_bytes();
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    text.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
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
