//! Import jobs, their chunks, the stored uploads, and the set-based contact upsert.
//!
//! Request-side functions run in the user's tenant transaction and filter by vendor; the
//! runner's lease functions are system work on the plain pool (they pick jobs of any vendor)
//! and everything it writes runs in `begin_tenant(job.vendor_id)`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kloyst_core::{UserId, VendorId};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// An import job row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
    pub id: Uuid,
    pub vendor_id: Uuid,
    pub created_by: Option<Uuid>,
    pub source: String,
    pub state: String,
    pub default_country: String,
    pub list_id: Option<Uuid>,
    pub file_name: Option<String>,
    pub total_bytes: Option<i64>,
    pub bytes_processed: i64,
    pub csv_layout: Option<sqlx::types::Json<Value>>,
    pub chunk_size: i32,
    pub chunks_completed: i32,
    pub rows_seen: i64,
    pub rows_created: i64,
    pub rows_updated: i64,
    pub rows_unchanged: i64,
    pub rows_rejected: i64,
    pub rows_duplicate: i64,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const JOB_COLUMNS: &str = "id, vendor_id, created_by, source, state, default_country, list_id, \
     file_name, total_bytes, bytes_processed, csv_layout, chunk_size, chunks_completed, rows_seen, \
     rows_created, rows_updated, rows_unchanged, rows_rejected, rows_duplicate, error_code, \
     error, created_at, started_at, finished_at";

pub(crate) struct NewJob<'a> {
    pub vendor: VendorId,
    pub created_by: UserId,
    pub source: &'a str,
    pub default_country: &'a str,
    pub list_id: Option<Uuid>,
    pub file_name: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub chunk_size: i32,
}

pub(crate) async fn insert_job(
    conn: &mut PgConnection,
    job: &NewJob<'_>,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO import_jobs (vendor_id, created_by, source, default_country, list_id, \
         file_name, content_type, chunk_size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(job.vendor.as_uuid())
    .bind(job.created_by.as_uuid())
    .bind(job.source)
    .bind(job.default_country)
    .bind(job.list_id)
    .bind(job.file_name)
    .bind(job.content_type)
    .bind(job.chunk_size)
    .fetch_one(conn)
    .await
}

pub(crate) async fn insert_upload_part(
    conn: &mut PgConnection,
    vendor: VendorId,
    job: Uuid,
    part: i32,
    data: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO import_uploads (job_id, part, vendor_id, data) VALUES ($1, $2, $3, $4)",
    )
    .bind(job)
    .bind(part)
    .bind(vendor.as_uuid())
    .bind(data)
    .execute(conn)
    .await?;
    Ok(())
}

/// The upload is complete: its size and how to read it.
pub(crate) async fn set_upload_complete(
    conn: &mut PgConnection,
    vendor: VendorId,
    job: Uuid,
    total_bytes: i64,
    layout: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_jobs SET total_bytes = $3, csv_layout = $4, \
         delimiter = chr(($4->>'delimiter')::int) WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(job)
    .bind(total_bytes)
    .bind(sqlx::types::Json(layout))
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn get_job(
    conn: &mut PgConnection,
    vendor: VendorId,
    job: Uuid,
) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM import_jobs WHERE vendor_id = $1 AND id = $2"
    ))
    .bind(vendor.as_uuid())
    .bind(job)
    .fetch_optional(conn)
    .await
}

/// The vendor's jobs, newest first, after `after` (created_at, id).
pub(crate) async fn list_jobs(
    conn: &mut PgConnection,
    vendor: VendorId,
    limit: u32,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM import_jobs WHERE vendor_id = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(vendor.as_uuid())
    .bind(after_at)
    .bind(after_id)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
}

/// Takes (or renews) the job for `owner` until `lease` from now, if it is runnable: QUEUED
/// with its upload complete, or PROCESSING with an expired lease or one this owner holds.
pub(crate) async fn take_lease(
    executor: impl PgExecutor<'_>,
    job: Uuid,
    owner: &str,
    lease: Duration,
) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE import_jobs SET state = 'PROCESSING', lease_owner = $2, \
         lease_expires_at = now() + make_interval(secs => $3), \
         started_at = COALESCE(started_at, now()) \
         WHERE id = $1 AND total_bytes IS NOT NULL AND (state = 'QUEUED' OR (state = 'PROCESSING' \
         AND (lease_expires_at IS NULL OR lease_expires_at < now() OR lease_owner = $2))) \
         RETURNING {JOB_COLUMNS}"
    ))
    .bind(job)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_optional(executor)
    .await
}

/// Gives the lease up (a clean shutdown), so that another worker resumes at once.
pub(crate) async fn release_lease(
    executor: impl PgExecutor<'_>,
    job: Uuid,
    owner: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE import_jobs SET lease_expires_at = now() \
         WHERE id = $1 AND lease_owner = $2 AND state = 'PROCESSING'",
    )
    .bind(job)
    .bind(owner)
    .execute(executor)
    .await?;
    Ok(())
}

/// Jobs nobody is running: queued for longer than `queued_for` (their wake-up was lost) or
/// processing with an expired lease (their worker died).
pub(crate) async fn runnable_jobs(
    executor: impl PgExecutor<'_>,
    queued_for: Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM import_jobs WHERE state IN ('QUEUED', 'PROCESSING') \
         AND total_bytes IS NOT NULL \
         AND ((state = 'QUEUED' AND created_at < now() - make_interval(secs => $1)) \
              OR (state = 'PROCESSING' AND lease_expires_at < now())) \
         ORDER BY created_at LIMIT $2",
    )
    .bind(queued_for.as_secs_f64())
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Where a job stopped: the last completed chunk's (seq, row_end, byte_end).
pub(crate) async fn last_chunk(
    conn: &mut PgConnection,
    vendor: VendorId,
    job: Uuid,
) -> Result<Option<(i32, i64, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, row_end, byte_end FROM import_chunks \
         WHERE vendor_id = $1 AND job_id = $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(vendor.as_uuid())
    .bind(job)
    .fetch_optional(conn)
    .await
}

/// Numbers this job already wrote (to count repeats across chunks after a resume).
pub(crate) async fn mobiles_written_by(
    conn: &mut PgConnection,
    vendor: VendorId,
    job: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT after->>'mobile' FROM contact_changes \
         WHERE vendor_id = $1 AND import_job_id = $2 AND after IS NOT NULL",
    )
    .bind(vendor.as_uuid())
    .bind(job)
    .fetch_all(conn)
    .await
}

pub(crate) async fn read_upload_part(
    executor: impl PgExecutor<'_>,
    vendor: VendorId,
    job: Uuid,
    part: i32,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT data FROM import_uploads WHERE vendor_id = $1 AND job_id = $2 AND part = $3",
    )
    .bind(vendor.as_uuid())
    .bind(job)
    .bind(part)
    .fetch_optional(executor)
    .await
}

pub(crate) async fn delete_uploads(
    conn: &mut PgConnection,
    vendor: VendorId,
    job: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM import_uploads WHERE vendor_id = $1 AND job_id = $2")
        .bind(vendor.as_uuid())
        .bind(job)
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts of one chunk (or of a whole inline import).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub seen: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub duplicate: i64,
    pub rejected: i64,
}

pub(crate) struct ChunkRecord<'a> {
    pub vendor: VendorId,
    pub job: Uuid,
    pub seq: i32,
    pub row_start: i64,
    pub row_end: i64,
    pub byte_start: Option<i64>,
    pub byte_end: Option<i64>,
    pub counts: Counts,
    pub rejected_rows: &'a Value,
}

/// Records a chunk as done and adds its counts to the job, renewing the lease: in the
/// chunk's own transaction, so a chunk and its contacts are committed together or not at all.
pub(crate) async fn record_chunk(
    conn: &mut PgConnection,
    chunk: &ChunkRecord<'_>,
    lease: Duration,
) -> Result<(), sqlx::Error> {
    let c = chunk.counts;
    let narrow = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO import_chunks (job_id, seq, vendor_id, state, row_start, row_end, byte_start, \
         byte_end, rows_seen, rows_created, rows_updated, rows_unchanged, rows_rejected, \
         rows_duplicate, rejected_rows, finished_at) \
         VALUES ($1, $2, $3, 'COMPLETED', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now())",
    )
    .bind(chunk.job)
    .bind(chunk.seq)
    .bind(chunk.vendor.as_uuid())
    .bind(chunk.row_start)
    .bind(chunk.row_end)
    .bind(chunk.byte_start)
    .bind(chunk.byte_end)
    .bind(narrow(c.seen))
    .bind(narrow(c.created))
    .bind(narrow(c.updated))
    .bind(narrow(c.unchanged))
    .bind(narrow(c.rejected))
    .bind(narrow(c.duplicate))
    .bind(sqlx::types::Json(chunk.rejected_rows))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE import_jobs SET chunks_completed = chunks_completed + 1, \
         rows_seen = rows_seen + $3, rows_created = rows_created + $4, \
         rows_updated = rows_updated + $5, rows_unchanged = rows_unchanged + $6, \
         rows_rejected = rows_rejected + $7, rows_duplicate = rows_duplicate + $8, \
         bytes_processed = COALESCE($9, bytes_processed), \
         lease_expires_at = now() + make_interval(secs => $10) \
         WHERE vendor_id = $1 AND id = $2",
    )
    .bind(chunk.vendor.as_uuid())
    .bind(chunk.job)
    .bind(c.seen)
    .bind(c.created)
    .bind(c.updated)
    .bind(c.unchanged)
    .bind(c.rejected)
    .bind(c.duplicate)
    .bind(chunk.byte_end)
    .bind(lease.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// The final state; the row is immutable afterwards (trigger).
pub(crate) async fn finish_job(
    conn: &mut PgConnection,
    vendor: VendorId,
    job: Uuid,
    failure: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    let (code, message) = failure.unzip();
    sqlx::query(
        "UPDATE import_jobs SET state = CASE WHEN $3::text IS NULL THEN 'COMPLETED' ELSE 'FAILED' END, \
         error_code = $3, error = $4, finished_at = now(), lease_owner = NULL, \
         lease_expires_at = NULL, \
         bytes_processed = CASE WHEN $3::text IS NULL THEN COALESCE(total_bytes, bytes_processed) \
                           ELSE bytes_processed END \
         WHERE vendor_id = $1 AND id = $2 AND state IN ('QUEUED', 'PROCESSING')",
    )
    .bind(vendor.as_uuid())
    .bind(job)
    .bind(code)
    .bind(message)
    .execute(conn)
    .await?;
    Ok(())
}

/// Rejected rows of a job in file order: (seq, rejected_rows) of chunks after `after_seq`.
pub(crate) async fn chunk_rejections(
    conn: &mut PgConnection,
    vendor: VendorId,
    job: Uuid,
    after_seq: i32,
    limit_chunks: i64,
) -> Result<Vec<(i32, sqlx::types::Json<Value>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, rejected_rows FROM import_chunks \
         WHERE vendor_id = $1 AND job_id = $2 AND seq > $3 AND rows_rejected > 0 \
         ORDER BY seq LIMIT $4",
    )
    .bind(vendor.as_uuid())
    .bind(job)
    .bind(after_seq)
    .bind(limit_chunks)
    .fetch_all(conn)
    .await
}

/// One contact to write: number, region and the attributes to merge in.
pub(crate) struct UpsertRow {
    pub mobile: String,
    pub country: Option<String>,
    pub attributes: Value,
}

/// Upserts `rows` (unique numbers) in one statement: new numbers are created; existing ones
/// get the given attributes merged in (given keys overwritten, others kept). Returns the
/// (mobile, id, created) of every row written; a row whose merge changes nothing is not
/// written (and leaves no audit row).
pub(crate) async fn upsert_contacts(
    conn: &mut PgConnection,
    vendor: VendorId,
    rows: &[&UpsertRow],
) -> Result<Vec<(String, Uuid, bool)>, sqlx::Error> {
    let mut mobiles = Vec::with_capacity(rows.len());
    let mut countries = Vec::with_capacity(rows.len());
    let mut attributes = Vec::with_capacity(rows.len());
    for row in rows {
        mobiles.push(row.mobile.as_str());
        countries.push(row.country.as_deref());
        attributes.push(sqlx::types::Json(&row.attributes));
    }
    sqlx::query_as(
        "INSERT INTO contacts AS c (vendor_id, mobile, country, attributes) \
         SELECT $1, t.mobile, t.country, t.attributes \
         FROM unnest($2::text[], $3::text[], $4::jsonb[]) AS t(mobile, country, attributes) \
         ON CONFLICT (vendor_id, mobile) DO UPDATE \
         SET attributes = c.attributes || EXCLUDED.attributes, \
             country = COALESCE(c.country, EXCLUDED.country) \
         WHERE NOT (c.attributes @> EXCLUDED.attributes) OR c.country IS NULL \
         RETURNING c.mobile, c.id, (c.xmax = 0) AS created",
    )
    .bind(vendor.as_uuid())
    .bind(&mobiles)
    .bind(&countries)
    .bind(&attributes)
    .fetch_all(conn)
    .await
}
