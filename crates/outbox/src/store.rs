//! The `outbox_events` table: writing events, claiming and marking them.

use kloyst_core::VendorId;
use kloyst_queue::Job;
use sqlx::PgConnection;
use uuid::Uuid;

/// The NOTIFY channel a statement trigger signals on every insert.
pub const CHANNEL: &str = "outbox_events";

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("could not serialise the {kind} event: {source}")]
    Payload {
        kind: &'static str,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// An event to publish once the caller's transaction commits.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The Redis stream (queue name) it goes to, e.g. `jobs` or `mail`.
    pub stream: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub vendor_id: Option<VendorId>,
    /// The request id of the HTTP request that caused it.
    pub correlation_id: Option<String>,
}

/// Writes `event` inside the caller's transaction; returns its id (the message id consumers
/// dedupe on). Takes a connection so it joins whatever transaction the caller holds.
pub async fn enqueue(conn: &mut PgConnection, event: &NewEvent) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO outbox_events (stream, kind, payload, vendor_id, correlation_id)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING event_id",
    )
    .bind(&event.stream)
    .bind(&event.kind)
    .bind(&event.payload)
    .bind(event.vendor_id.map(|v| v.as_uuid()))
    .bind(&event.correlation_id)
    .fetch_one(conn)
    .await
}

/// Writes a typed job for `stream` inside the caller's transaction.
pub async fn enqueue_job<J: Job>(
    conn: &mut PgConnection,
    stream: &str,
    job: &J,
    vendor_id: Option<VendorId>,
    correlation_id: Option<String>,
) -> Result<Uuid, OutboxError> {
    let payload = serde_json::to_value(job).map_err(|source| OutboxError::Payload {
        kind: J::KIND,
        source,
    })?;
    let event = NewEvent {
        stream: stream.to_owned(),
        kind: J::KIND.to_owned(),
        payload,
        vendor_id,
        correlation_id,
    };
    Ok(enqueue(conn, &event).await?)
}

/// A committed, not yet published event, as the relay reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: Uuid,
    pub stream: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub correlation_id: Option<String>,
}

/// Locks up to `limit` unpublished events, oldest first. Rows locked by another relay are
/// skipped, so several relays share the backlog without waiting on each other.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, stream, kind, payload, correlation_id
           FROM outbox_events
          WHERE published_at IS NULL
          ORDER BY id
          LIMIT $1
          FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn mark_published(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox_events SET published_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Backlog size and the age of its oldest event, for the relay's gauges.
pub async fn backlog(conn: &mut PgConnection) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
           FROM outbox_events WHERE published_at IS NULL",
    )
    .fetch_one(conn)
    .await
}

/// Deletes up to `limit` events published before `older_than` ago; returns how many.
pub async fn prune_published(
    conn: &mut PgConnection,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "DELETE FROM outbox_events WHERE id IN (
             SELECT id FROM outbox_events
              WHERE published_at < now() - make_interval(secs => $1)
              ORDER BY id LIMIT $2)",
    )
    .bind(older_than.as_secs_f64())
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}
