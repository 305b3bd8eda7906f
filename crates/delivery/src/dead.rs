//! Dead-lettered statuses: the operators' view of statuses the applier gave up on (their
//! message never appeared within `STATUS_PARK_TIMEOUT`, or the wamid is not an outbound
//! message), and their replay. A replayed status is due again at once; applying it is
//! idempotent (the fold and the charge's ledger reference), so a replay can never charge twice.

use chrono::{DateTime, Utc};
use kloyst_core::page::{self, Page};
use kloyst_core::FieldError;
use serde::Serialize;
use sqlx::PgPool;

/// One dead-lettered status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeadStatus {
    pub id: i64,
    pub wa_message_id: String,
    pub status: String,
    pub status_at: DateTime<Utc>,
    pub inbox_id: i64,
    pub attempts: i32,
    pub received_at: DateTime<Utc>,
    pub dead_at: Option<DateTime<Utc>>,
    pub dead_reason: Option<String>,
    /// The status object as Meta sent it.
    pub payload: serde_json::Value,
}

/// Why a listing was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeadStatusError {
    #[error("invalid cursor")]
    Cursor(FieldError),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
}

/// Dead statuses, newest first; `cursor` is a previous page's `next_cursor`.
pub async fn list_dead_statuses(
    pg: &PgPool,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<DeadStatus>, DeadStatusError> {
    let before = match cursor {
        None => None,
        Some(cursor) => Some(decode(cursor).map_err(DeadStatusError::Cursor)?),
    };
    let mut rows: Vec<DeadStatus> = sqlx::query_as(
        "SELECT id, wa_message_id, status, status_at, inbox_id, attempts, received_at, dead_at,
                dead_reason, payload
           FROM message_status_events
          WHERE dead_at IS NOT NULL AND ($1::bigint IS NULL OR id < $1)
          ORDER BY id DESC
          LIMIT $2",
    )
    .bind(before)
    .bind(i64::from(limit) + 1)
    .fetch_all(pg)
    .await?;
    let next_cursor = if rows.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        rows.last()
            .map(|row| page::encode_bytes(&row.id.to_be_bytes()))
    } else {
        None
    };
    Ok(Page {
        data: rows,
        next_cursor,
    })
}

fn decode(cursor: &str) -> Result<i64, FieldError> {
    let invalid = || FieldError::new("cursor", "invalid_cursor", "not a cursor of this list");
    let bytes = page::decode_bytes(cursor).ok_or_else(invalid)?;
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| invalid())?;
    Ok(i64::from_be_bytes(bytes))
}

/// Makes the dead statuses `ids` (or, with `None`, every dead status) due again. Returns the
/// ids replayed.
pub async fn replay_dead_statuses(pg: &PgPool, ids: Option<&[i64]>) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar(
        "UPDATE message_status_events
            SET dead_at = NULL, dead_reason = NULL, attempts = 0, next_attempt_at = NULL
          WHERE dead_at IS NOT NULL AND ($1::bigint[] IS NULL OR id = ANY($1))
          RETURNING id",
    )
    .bind(ids)
    .fetch_all(pg)
    .await
}
