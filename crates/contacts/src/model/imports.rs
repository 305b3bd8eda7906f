//! Import jobs and bulk results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Rejection;

/// One row of a JSON bulk body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRow {
    pub mobile: String,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// `?default_country=&list_id=&mobile_column=&file_name=` of `POST /v1/contacts/bulk`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    /// ISO alpha-2 region for numbers without a country code; default: the vendor's.
    #[serde(default)]
    pub default_country: Option<String>,
    /// Add every imported contact to this list (of the caller's vendor).
    #[serde(default)]
    pub list_id: Option<Uuid>,
    /// CSV only: the header of the number column, when it is not one of the usual names.
    #[serde(default)]
    pub mobile_column: Option<String>,
    /// CSV only: the uploaded file's name, kept on the job.
    #[serde(default)]
    pub file_name: Option<String>,
}

/// What an inline JSON import did, row by row.
#[derive(Clone, Debug, Serialize)]
pub struct BulkResult {
    /// The import job recording this import (source JSON, already COMPLETED).
    pub job_id: Uuid,
    pub created: Vec<BulkOutcome>,
    pub updated: Vec<BulkOutcome>,
    /// Matched an existing contact whose attributes already had these values.
    pub unchanged: Vec<BulkOutcome>,
    /// Rows whose number appeared earlier in the same body: merged into that row.
    pub duplicates: Vec<BulkOutcome>,
    pub rejected: Vec<Rejection>,
}

/// A row that was taken: its index in the body and the contact it became.
#[derive(Clone, Debug, Serialize)]
pub struct BulkOutcome {
    pub row: u64,
    pub mobile: String,
    pub contact_id: Option<Uuid>,
}

/// An import job as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ImportJobView {
    pub id: Uuid,
    /// QUEUED, PROCESSING, COMPLETED or FAILED.
    pub state: String,
    /// CSV or JSON.
    pub source: String,
    pub default_country: String,
    pub list_id: Option<Uuid>,
    pub file_name: Option<String>,
    pub total_bytes: Option<i64>,
    pub bytes_processed: i64,
    /// 0–100: bytes of the file processed (100 once COMPLETED).
    pub progress_percent: f64,
    pub chunks_completed: i32,
    pub rows_seen: i64,
    pub rows_created: i64,
    pub rows_updated: i64,
    pub rows_unchanged: i64,
    pub rows_duplicate: i64,
    pub rows_rejected: i64,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `?format=json|csv&limit=&cursor=` of the rejections of an import.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectionsRequest {
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}
