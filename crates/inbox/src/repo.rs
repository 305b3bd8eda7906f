//! The SQL of `webhook_inbox`. System work on the plain pool: the inbox has no tenant.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use crate::model::{ClaimedRow, NewWebhook};

/// Inserts a batch in one statement; rows whose dedupe key is already stored are skipped.
/// Returns the dedupe keys of the rows that were new (rows without a key are always new).
pub(crate) async fn insert_batch(
    conn: &mut PgConnection,
    rows: &[&NewWebhook],
) -> Result<Vec<Option<String>>, sqlx::Error> {
    let mut sources = Vec::with_capacity(rows.len());
    let mut headers = Vec::with_capacity(rows.len());
    let mut bodies = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    let mut request_ids = Vec::with_capacity(rows.len());
    for row in rows {
        sources.push(row.source.as_str());
        headers.push(row.headers.to_string());
        bodies.push(row.body.as_ref());
        hashes.push(row.body_sha256.as_slice());
        keys.push(row.dedupe_key.as_deref());
        request_ids.push(row.request_id.as_deref());
    }
    sqlx::query_scalar(
        "INSERT INTO webhook_inbox (source, headers, raw_body, body_sha256, dedupe_key, request_id) \
         SELECT s, h::jsonb, b, d, k, r \
           FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::text[]) \
                AS t(s, h, b, d, k, r) \
         ON CONFLICT (dedupe_key) DO NOTHING \
         RETURNING dedupe_key",
    )
    .bind(&sources)
    .bind(&headers)
    .bind(&bodies)
    .bind(&hashes)
    .bind(&keys)
    .bind(&request_ids)
    .fetch_all(conn)
    .await
}

/// Claims up to `limit` due rows (new, failed and due again, or abandoned by a dead
/// processor) for `lease`, counting the attempt.
pub(crate) async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<ClaimedRow>, sqlx::Error> {
    sqlx::query_as::<_, ClaimedRow>(
        "UPDATE webhook_inbox w \
            SET state = 'PROCESSING', attempts = w.attempts + 1, \
                next_attempt_at = now() + make_interval(secs => $2) \
           FROM (SELECT id FROM webhook_inbox \
                  WHERE state IN ('RECEIVED', 'FAILED', 'PROCESSING') AND next_attempt_at <= now() \
                  ORDER BY next_attempt_at, id \
                  LIMIT $1 \
                  FOR UPDATE SKIP LOCKED) due \
          WHERE w.id = due.id \
      RETURNING w.id, w.source, w.raw_body, w.headers, w.attempts, w.received_at",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Marks a claimed row processed, in the transaction that applied it. False when the row is
/// no longer ours (its lease ran out and another processor took it): the caller rolls back.
pub(crate) async fn mark_processed(
    conn: &mut PgConnection,
    id: i64,
    attempts: i32,
    event_type: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE webhook_inbox \
            SET state = 'PROCESSED', processed_at = now(), last_error = NULL, \
                event_type = COALESCE($3, event_type) \
          WHERE id = $1 AND state = 'PROCESSING' AND attempts = $2",
    )
    .bind(id)
    .bind(attempts)
    .bind(event_type)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records a failed attempt: due again after `retry_in`, or dead-lettered when `dead`.
pub(crate) async fn mark_failed(
    pool: &PgPool,
    id: i64,
    attempts: i32,
    error: &str,
    retry_in: Duration,
    dead: bool,
    event_type: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_inbox \
            SET state = CASE WHEN $5 THEN 'DEAD' ELSE 'FAILED' END, \
                dead_at = CASE WHEN $5 THEN now() END, \
                next_attempt_at = now() + make_interval(secs => $4), \
                last_error = left($3, 4000), \
                event_type = COALESCE($6, event_type) \
          WHERE id = $1 AND state = 'PROCESSING' AND attempts = $2",
    )
    .bind(id)
    .bind(attempts)
    .bind(error)
    .bind(retry_in.as_secs_f64())
    .bind(dead)
    .bind(event_type)
    .execute(pool)
    .await?;
    Ok(())
}
