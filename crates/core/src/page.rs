//! Cursor pagination shared by every list route: `?limit=&cursor=` in, `{data, next_cursor}`
//! out. Cursors are opaque hex; they carry no vendor, so a cursor from another tenant only
//! positions a query that is filtered by the caller's vendor anyway.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::FieldError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// `?limit=&cursor=` of a list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageRequest {
    /// 1–200, default 50; larger values are capped at 200.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The page size: default 50, larger values capped at 200, 0 refused.
    pub fn limit(&self) -> Result<u32, FieldError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(0) => Err(FieldError::new(
                "limit",
                "out_of_range",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
            Some(n) => Ok(n.min(MAX_LIMIT)),
        }
    }
}

/// A page of a cursor-paginated list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The answer to a cursor this list did not make.
pub fn invalid_cursor() -> FieldError {
    FieldError::new("cursor", "invalid_cursor", "not a cursor of this list")
}

/// A (created_at, id) position: newest-first lists.
pub fn encode_time_id(at: DateTime<Utc>, id: Uuid) -> String {
    let mut bytes = Vec::with_capacity(24);
    bytes.extend_from_slice(&at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(id.as_bytes());
    encode_bytes(&bytes)
}

pub fn decode_time_id(cursor: &str) -> Result<(DateTime<Utc>, Uuid), FieldError> {
    let bytes = decode_bytes(cursor).ok_or_else(invalid_cursor)?;
    if bytes.len() != 24 {
        return Err(invalid_cursor());
    }
    let (micros, id) = bytes.split_at(8);
    let micros = i64::from_be_bytes(micros.try_into().map_err(|_| invalid_cursor())?);
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid_cursor)?;
    let id = Uuid::from_slice(id).map_err(|_| invalid_cursor())?;
    Ok((at, id))
}

/// Cursor bytes as lower-case hex.
pub fn encode_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex back to bytes; `None` for anything that is not short, even-length hex.
pub fn decode_bytes(text: &str) -> Option<Vec<u8>> {
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
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        let cursor = encode_time_id(at, id);
        assert_eq!(decode_time_id(&cursor).unwrap(), (at, id));
        for bad in ["", "zz", "00", &cursor[..40], &"0".repeat(200)] {
            assert!(decode_time_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits() {
        let req = |limit| PageRequest {
            limit,
            cursor: None,
        };
        assert_eq!(req(None).limit().unwrap(), 50);
        assert_eq!(req(Some(500)).limit().unwrap(), 200);
        assert_eq!(req(Some(7)).limit().unwrap(), 7);
        assert_eq!(req(Some(0)).limit().unwrap_err().code, "out_of_range");
    }
}
