//! Bulk JSON imports (inline) and CSV uploads (stored, then run by the worker-pool).

use std::collections::HashMap;
use std::fmt::Display;
use std::io::Cursor;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use kloyst_audit::RequestMeta;
use kloyst_core::{FieldError, VendorId};
use kloyst_identity::Principal;
use kloyst_queue::Job;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{begin_for, set_change_context, Contacts, ContactsSettings};
use crate::csv_source::CsvRows;
use crate::error::ContactsError;
use crate::model::{
    BulkOutcome, BulkResult, BulkRow, ImportJobView, ImportOptions, Page, PageRequest, Rejection,
};
use crate::phone::{self, Region};
use crate::repo::imports::{self as repo, ChunkRecord, Counts, JobRow, NewJob, UpsertRow};
use crate::{attributes, cursor};

/// Stored uploads are split into parts of this size (the last one shorter).
pub(crate) const UPLOAD_PART_BYTES: usize = 1024 * 1024;

/// The worker-pool's wake-up for a stored upload, queued through the outbox in the
/// transaction that stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunImport {
    pub job_id: Uuid,
    pub vendor_id: VendorId,
}

impl Job for RunImport {
    const KIND: &'static str = "contacts.import";
}

impl Contacts {
    /// A JSON array of up to [`ContactsSettings::INLINE_MAX_ROWS`] rows, imported inline in
    /// one transaction and recorded as a completed JSON import job. Each row is created,
    /// updated, unchanged, a duplicate of an earlier row (merged into it), or rejected with
    /// its reason; a rejected row never stops the others.
    pub async fn import_json(
        &self,
        who: &Principal,
        options: ImportOptions,
        rows: Vec<BulkRow>,
        meta: &RequestMeta,
    ) -> Result<BulkResult, ContactsError> {
        if rows.is_empty() {
            return Err(ContactsError::invalid_field(
                "",
                "empty",
                "send at least one row",
            ));
        }
        if rows.len() > ContactsSettings::INLINE_MAX_ROWS {
            return Err(ContactsError::invalid_field(
                "",
                "too_many_rows",
                format!(
                    "at most {} rows per JSON request; upload a CSV file for more",
                    ContactsSettings::INLINE_MAX_ROWS
                ),
            ));
        }
        if options.mobile_column.is_some() {
            return Err(ContactsError::invalid_field(
                "mobile_column",
                "csv_only",
                "mobile_column applies to CSV uploads",
            ));
        }
        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        let (region, region_code) = resolve_region(&mut tx, vendor, &options).await?;
        check_list(&mut tx, vendor, options.list_id).await?;

        let mut sorted = SortedRows::default();
        for (index, row) in rows.into_iter().enumerate() {
            let index = index as u64;
            if let Err(problem) = attributes::check(&row.attributes, false) {
                sorted.reject(Rejection {
                    row: index,
                    raw: row.mobile,
                    reason: problem.code.to_owned(),
                    message: problem.message,
                    field: Some(
                        problem
                            .key
                            .map_or("attributes".to_owned(), |k| format!("attributes.{k}")),
                    ),
                });
                continue;
            }
            match phone::normalize(&row.mobile, region) {
                Ok(number) => sorted.take(index, number.mobile, number.country, row.attributes),
                Err(reason) => sorted.reject(Rejection {
                    row: index,
                    raw: row.mobile,
                    reason: reason.code().to_owned(),
                    message: reason.message().to_owned(),
                    field: Some("mobile".to_owned()),
                }),
            }
        }

        let job = repo::insert_job(
            &mut tx,
            &NewJob {
                vendor,
                created_by: who.user_id,
                source: "JSON",
                default_country: &region_code,
                list_id: options.list_id,
                file_name: None,
                content_type: Some("application/json"),
                chunk_size: i32::try_from(ContactsSettings::INLINE_MAX_ROWS).unwrap_or(i32::MAX),
            },
        )
        .await?;
        set_change_context(
            &mut tx,
            Some(who.user_id),
            meta.request_id.as_deref(),
            Some(job),
        )
        .await?;
        let written = write_rows(&mut tx, vendor, &sorted.unique, options.list_id).await?;

        let mut result = BulkResult {
            job_id: job,
            created: Vec::new(),
            updated: Vec::new(),
            unchanged: Vec::new(),
            duplicates: sorted.duplicates,
            rejected: sorted.rejected,
        };
        for row in &sorted.unique {
            let outcome = BulkOutcome {
                row: row.first_row,
                mobile: row.upsert.mobile.clone(),
                contact_id: written.get(&row.upsert.mobile).map(|(id, _)| *id),
            };
            match written.get(&row.upsert.mobile) {
                Some((_, true)) => result.created.push(outcome),
                Some((_, false)) => result.updated.push(outcome),
                None => result.unchanged.push(outcome),
            }
        }
        let counts = Counts {
            seen: (result.created.len()
                + result.updated.len()
                + result.unchanged.len()
                + result.duplicates.len()
                + result.rejected.len()) as i64,
            created: result.created.len() as i64,
            updated: result.updated.len() as i64,
            unchanged: result.unchanged.len() as i64,
            duplicate: result.duplicates.len() as i64,
            rejected: result.rejected.len() as i64,
        };
        let rejected_rows = serde_json::to_value(&result.rejected)
            .map_err(|e| ContactsError::corrupt(e.to_string()))?;
        repo::record_chunk(
            &mut tx,
            &ChunkRecord {
                vendor,
                job,
                seq: 1,
                row_start: 1,
                row_end: counts.seen,
                byte_start: None,
                byte_end: None,
                counts,
                rejected_rows: &rejected_rows,
            },
            std::time::Duration::ZERO,
        )
        .await?;
        repo::finish_job(&mut tx, vendor, job, None).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Stores a CSV upload streamed from the request (never whole in memory) and queues its
    /// import: 202 material. The header is checked before anything is kept (no header, no
    /// number column, binary data: 422). Over `IMPORT_MAX_BYTES`: 413, and nothing is kept.
    /// The job, its file and its wake-up commit together.
    pub async fn import_csv<S, E>(
        &self,
        who: &Principal,
        options: ImportOptions,
        content_type: Option<&str>,
        mut body: S,
        meta: &RequestMeta,
    ) -> Result<ImportJobView, ContactsError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: Display,
    {
        let vendor = who.vendor_id;
        let limit = self.settings().import_max_bytes;
        let mut tx = begin_for(self.pg(), who).await?;
        let (_, region_code) = resolve_region(&mut tx, vendor, &options).await?;
        check_list(&mut tx, vendor, options.list_id).await?;
        let file_name = match options.file_name.as_deref().map(str::trim) {
            Some(name) if name.chars().count() > 500 => {
                return Err(ContactsError::invalid_field(
                    "file_name",
                    "too_long",
                    "at most 500 characters",
                ))
            }
            other => other.filter(|n| !n.is_empty()),
        };
        let job = repo::insert_job(
            &mut tx,
            &NewJob {
                vendor,
                created_by: who.user_id,
                source: "CSV",
                default_country: &region_code,
                list_id: options.list_id,
                file_name,
                content_type,
                chunk_size: i32::try_from(self.settings().import_chunk_rows).unwrap_or(i32::MAX),
            },
        )
        .await?;

        let mut buffer: Vec<u8> = Vec::with_capacity(UPLOAD_PART_BYTES);
        let mut part = 0_i32;
        let mut total: u64 = 0;
        let mut layout = None;
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| ContactsError::UploadInterrupted(e.to_string()))?;
            total += piece.len() as u64;
            if total > limit {
                return Err(ContactsError::TooLarge { limit_bytes: limit });
            }
            let mut rest: &[u8] = &piece;
            while !rest.is_empty() {
                let room = UPLOAD_PART_BYTES - buffer.len();
                let (now, later) = rest.split_at(room.min(rest.len()));
                buffer.extend_from_slice(now);
                rest = later;
                if buffer.len() == UPLOAD_PART_BYTES {
                    if layout.is_none() {
                        layout = Some(read_layout(&buffer, options.mobile_column.as_deref())?);
                    }
                    repo::insert_upload_part(&mut tx, vendor, job, part, &buffer).await?;
                    part += 1;
                    buffer.clear();
                }
            }
        }
        if layout.is_none() {
            layout = Some(read_layout(&buffer, options.mobile_column.as_deref())?);
        }
        if !buffer.is_empty() {
            repo::insert_upload_part(&mut tx, vendor, job, part, &buffer).await?;
        }
        let layout = layout.ok_or_else(|| ContactsError::corrupt("no layout"))?;
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        repo::set_upload_complete(&mut tx, vendor, job, total, &layout).await?;
        kloyst_outbox::enqueue_job(
            &mut tx,
            kloyst_queue::streams::JOBS,
            &RunImport {
                job_id: job,
                vendor_id: vendor,
            },
            Some(vendor),
            meta.request_id.clone(),
        )
        .await?;
        let row = repo::get_job(&mut tx, vendor, job)
            .await?
            .ok_or(ContactsError::NotFound("import"))?;
        tx.commit().await?;
        Ok(job_view(row))
    }

    /// One import job of the caller's vendor.
    pub async fn import_job(
        &self,
        who: &Principal,
        id: Uuid,
    ) -> Result<ImportJobView, ContactsError> {
        let mut tx = begin_for(self.pg(), who).await?;
        let row = repo::get_job(&mut tx, who.vendor_id, id).await?;
        tx.commit().await?;
        row.map(job_view).ok_or(ContactsError::NotFound("import"))
    }

    /// The caller's vendor's import jobs, newest first.
    pub async fn import_jobs(
        &self,
        who: &Principal,
        page: PageRequest,
    ) -> Result<Page<ImportJobView>, ContactsError> {
        let (limit, after) = cursor::page(&page)?;
        let after = after.map(|c| cursor::decode_time_id(&c)).transpose()?;
        let mut tx = begin_for(self.pg(), who).await?;
        let mut rows = repo::list_jobs(&mut tx, who.vendor_id, limit + 1, after).await?;
        tx.commit().await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| cursor::encode_time_id(r.created_at, r.id))
        } else {
            None
        };
        Ok(Page {
            data: rows.into_iter().map(job_view).collect(),
            next_cursor,
        })
    }

    /// The rows an import rejected, in file order, `limit` (default 1,000, at most 10,000)
    /// at a time. The cursor is opaque (chunk and position).
    pub async fn import_rejections(
        &self,
        who: &Principal,
        id: Uuid,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Page<Rejection>, ContactsError> {
        let limit = match limit {
            None => 1_000,
            Some(0) => {
                return Err(ContactsError::invalid_field(
                    "limit",
                    "out_of_range",
                    "must be between 1 and 10000",
                ))
            }
            Some(n) => n.min(10_000) as usize,
        };
        let (after_seq, after_index) = match after {
            Some(c) => cursor::decode_seq_index(c)?,
            None => (0, 0),
        };
        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        if repo::get_job(&mut tx, vendor, id).await?.is_none() {
            return Err(ContactsError::NotFound("import"));
        }
        let mut data = Vec::new();
        let mut next_cursor = None;
        // Resume inside the chunk the cursor points into, then walk the following ones.
        let mut seq = after_seq.saturating_sub(1);
        let mut skip = after_index;
        'chunks: loop {
            let chunks = repo::chunk_rejections(&mut tx, vendor, id, seq, 16).await?;
            if chunks.is_empty() {
                break;
            }
            for (chunk_seq, rows) in chunks {
                seq = chunk_seq;
                let rows: Vec<Rejection> = serde_json::from_value(rows.0)
                    .map_err(|e| ContactsError::corrupt(format!("rejected_rows: {e}")))?;
                let start = if chunk_seq == after_seq { skip } else { 0 };
                skip = 0;
                for (index, rejection) in rows.into_iter().enumerate().skip(start) {
                    if data.len() == limit {
                        next_cursor = Some(cursor::encode_seq_index(chunk_seq, index));
                        break 'chunks;
                    }
                    data.push(rejection);
                }
            }
        }
        tx.commit().await?;
        Ok(Page { data, next_cursor })
    }
}

/// The region for numbers without a country code: the request's, else the vendor's.
async fn resolve_region(
    conn: &mut PgConnection,
    vendor: VendorId,
    options: &ImportOptions,
) -> Result<(Region, String), ContactsError> {
    let code = match options.default_country.as_deref() {
        Some(code) => code.trim().to_ascii_uppercase(),
        None => crate::repo::contacts::vendor_default_country(conn, vendor)
            .await?
            .unwrap_or_else(|| "IN".to_owned()),
    };
    let region = phone::parse_region(&code).ok_or_else(|| {
        ContactsError::invalid_field(
            "default_country",
            "unknown_country",
            "an ISO 3166-1 alpha-2 country code, e.g. IN",
        )
    })?;
    Ok((region, code))
}

async fn check_list(
    conn: &mut PgConnection,
    vendor: VendorId,
    list: Option<Uuid>,
) -> Result<(), ContactsError> {
    match list {
        Some(list) if !crate::repo::lists::list_exists(conn, vendor, list).await? => Err(
            ContactsError::invalid_field("list_id", "unknown_list", "no such contact list"),
        ),
        _ => Ok(()),
    }
}

/// The header of an upload, checked before the file is kept.
fn read_layout(start: &[u8], mobile_column: Option<&str>) -> Result<Value, ContactsError> {
    let rows = CsvRows::open(Cursor::new(start), mobile_column).map_err(|error| {
        ContactsError::Invalid(vec![FieldError::new(
            "file",
            error.code(),
            error.to_string(),
        )])
    })?;
    serde_json::to_value(rows.layout()).map_err(|e| ContactsError::corrupt(e.to_string()))
}

/// Upserts `rows` and adds them to `list`; returns mobile → (contact id, created) for the
/// rows written (an unchanged row is not written).
pub(crate) async fn write_rows(
    conn: &mut PgConnection,
    vendor: VendorId,
    rows: &[UniqueRow],
    list: Option<Uuid>,
) -> Result<HashMap<String, (Uuid, bool)>, ContactsError> {
    // In number order: neighbouring keys share index pages (fewer pages touched and
    // WAL-logged per chunk), and two imports of one vendor lock rows in the same order.
    let mut upserts: Vec<&UpsertRow> = rows.iter().map(|r| &r.upsert).collect();
    upserts.sort_unstable_by(|a, b| a.mobile.cmp(&b.mobile));
    let written = repo::upsert_contacts(conn, vendor, &upserts).await?;
    if let Some(list) = list {
        let mobiles: Vec<&str> = rows.iter().map(|r| r.upsert.mobile.as_str()).collect();
        crate::repo::lists::add_members_by_mobile(conn, vendor, list, &mobiles).await?;
    }
    Ok(written
        .into_iter()
        .map(|(mobile, id, created)| (mobile, (id, created)))
        .collect())
}

/// A number taken once per import batch, with the attributes of every row that had it.
pub(crate) struct UniqueRow {
    pub first_row: u64,
    pub upsert: UpsertRow,
}

/// Rows sorted into unique numbers (later rows' attributes win per key), duplicates and
/// rejections.
#[derive(Default)]
pub(crate) struct SortedRows {
    pub unique: Vec<UniqueRow>,
    index: HashMap<String, usize>,
    pub duplicates: Vec<BulkOutcome>,
    pub rejected: Vec<Rejection>,
}

impl SortedRows {
    pub fn take(
        &mut self,
        row: u64,
        mobile: String,
        country: Option<String>,
        attributes: Map<String, Value>,
    ) {
        match self.index.get(&mobile) {
            Some(&at) => {
                if let Some(Value::Object(existing)) =
                    self.unique.get_mut(at).map(|u| &mut u.upsert.attributes)
                {
                    existing.extend(attributes);
                }
                self.duplicates.push(BulkOutcome {
                    row,
                    mobile,
                    contact_id: None,
                });
            }
            None => {
                self.index.insert(mobile.clone(), self.unique.len());
                self.unique.push(UniqueRow {
                    first_row: row,
                    upsert: UpsertRow {
                        mobile,
                        country,
                        attributes: Value::Object(attributes),
                    },
                });
            }
        }
    }

    pub fn reject(&mut self, rejection: Rejection) {
        self.rejected.push(rejection);
    }
}

pub(crate) fn job_view(row: JobRow) -> ImportJobView {
    let progress_percent = match (row.state.as_str(), row.total_bytes) {
        ("COMPLETED", _) => 100.0,
        (_, Some(total)) if total > 0 => {
            ((row.bytes_processed as f64 / total as f64) * 1000.0).round() / 10.0
        }
        _ => 0.0,
    };
    ImportJobView {
        id: row.id,
        state: row.state,
        source: row.source,
        default_country: row.default_country,
        list_id: row.list_id,
        file_name: row.file_name,
        total_bytes: row.total_bytes,
        bytes_processed: row.bytes_processed,
        progress_percent,
        chunks_completed: row.chunks_completed,
        rows_seen: row.rows_seen,
        rows_created: row.rows_created,
        rows_updated: row.rows_updated,
        rows_unchanged: row.rows_unchanged,
        rows_duplicate: row.rows_duplicate,
        rows_rejected: row.rows_rejected,
        error_code: row.error_code,
        error: row.error,
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
    }
}
