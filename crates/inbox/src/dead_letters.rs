//! Dead letters: webhooks whose processing failed for good. Listed newest first; replay puts
//! them back in the queue with fresh attempts (processing is idempotent, so a replay of
//! something already applied changes nothing).

use chrono::{DateTime, Utc};
use kloyst_core::page::{decode_bytes, encode_bytes, invalid_cursor, Page};
use kloyst_core::FieldError;
use serde::Serialize;
use sqlx::PgPool;

use crate::model::Source;

/// A dead letter as operators see it.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub source: String,
    pub event_type: Option<String>,
    pub received_at: DateTime<Utc>,
    pub dead_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub replay_count: i32,
    pub last_error: Option<String>,
    pub request_id: Option<String>,
    pub body_bytes: i32,
    /// The first 2,000 characters of the body (lossy UTF-8).
    pub body_preview: String,
}

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    id: i64,
    source: String,
    event_type: Option<String>,
    received_at: DateTime<Utc>,
    dead_at: Option<DateTime<Utc>>,
    attempts: i32,
    replay_count: i32,
    last_error: Option<String>,
    request_id: Option<String>,
    body_bytes: i32,
    body_head: Vec<u8>,
}

impl From<DeadLetterRow> for DeadLetter {
    fn from(row: DeadLetterRow) -> Self {
        Self {
            id: row.id,
            source: row.source,
            event_type: row.event_type,
            received_at: row.received_at,
            dead_at: row.dead_at,
            attempts: row.attempts,
            replay_count: row.replay_count,
            last_error: row.last_error,
            request_id: row.request_id,
            body_bytes: row.body_bytes,
            body_preview: String::from_utf8_lossy(&row.body_head)
                .chars()
                .take(2000)
                .collect(),
        }
    }
}

/// What a listing asks for.
#[derive(Clone, Debug, Default)]
pub struct DeadLetterQuery {
    pub source: Option<Source>,
    pub limit: u32,
    pub cursor: Option<String>,
}

fn encode_cursor(at: DateTime<Utc>, id: i64) -> String {
    let mut bytes = at.timestamp_micros().to_be_bytes().to_vec();
    bytes.extend_from_slice(&id.to_be_bytes());
    encode_bytes(&bytes)
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, i64), FieldError> {
    let bytes = decode_bytes(cursor).ok_or_else(invalid_cursor)?;
    let (at, id) = bytes
        .split_first_chunk::<8>()
        .and_then(|(at, rest)| Some((*at, <[u8; 8]>::try_from(rest).ok()?)))
        .ok_or_else(invalid_cursor)?;
    let at = DateTime::from_timestamp_micros(i64::from_be_bytes(at)).ok_or_else(invalid_cursor)?;
    Ok((at, i64::from_be_bytes(id)))
}

/// Why a listing was refused.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("invalid cursor")]
    Cursor(FieldError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub async fn list(pool: &PgPool, query: &DeadLetterQuery) -> Result<Page<DeadLetter>, ListError> {
    let after = query
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()
        .map_err(ListError::Cursor)?;
    let limit = i64::from(query.limit.max(1));
    let mut rows = sqlx::query_as::<_, DeadLetterRow>(
        "SELECT id, source, event_type, received_at, dead_at, attempts, replay_count, last_error, \
                request_id, octet_length(raw_body) AS body_bytes, \
                substring(raw_body FROM 1 FOR 8000) AS body_head \
           FROM webhook_inbox \
          WHERE state = 'DEAD' \
            AND ($1::text IS NULL OR source = $1) \
            AND ($2::timestamptz IS NULL OR (dead_at, id) < ($2, $3)) \
          ORDER BY dead_at DESC, id DESC \
          LIMIT $4",
    )
    .bind(query.source.map(Source::as_str))
    .bind(after.map(|(at, _)| at))
    .bind(after.map_or(0, |(_, id)| id))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .and_then(|last| Some(encode_cursor(last.dead_at?, last.id)))
    } else {
        None
    };
    Ok(Page {
        data: rows.into_iter().map(DeadLetter::from).collect(),
        next_cursor,
    })
}

/// Puts the given dead letters back in the queue. Returns the ids that were dead (others are
/// ignored: already replayed, or never dead).
pub async fn replay(pool: &PgPool, ids: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE webhook_inbox \
            SET state = 'RECEIVED', dead_at = NULL, attempts = 0, next_attempt_at = now(), \
                replay_count = replay_count + 1 \
          WHERE id = ANY($1) AND state = 'DEAD' \
      RETURNING id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Puts every dead letter (of `source`, if given) back in the queue. Returns how many.
pub async fn replay_all(pool: &PgPool, source: Option<Source>) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE webhook_inbox \
            SET state = 'RECEIVED', dead_at = NULL, attempts = 0, next_attempt_at = now(), \
                replay_count = replay_count + 1 \
          WHERE state = 'DEAD' AND ($1::text IS NULL OR source = $1)",
    )
    .bind(source.map(Source::as_str))
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_750_000_000_123_456).unwrap();
        let cursor = encode_cursor(at, 42);
        assert_eq!(decode_cursor(&cursor).unwrap(), (at, 42));
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("00").is_err());
    }
}
