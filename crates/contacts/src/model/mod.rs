//! What the service returns and accepts; serialised as the API's JSON.

mod imports;
mod lists;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

pub use imports::*;
pub use lists::*;

pub use kloyst_core::page::{Page, PageRequest};

/// A contact as the API shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ContactView {
    pub id: Uuid,
    /// E.164 digits without `+`, e.g. `919876543210`.
    pub mobile: String,
    /// ISO 3166-1 alpha-2 region of the number.
    pub country: Option<String>,
    /// `attributes.name`, if any.
    pub name: Option<String>,
    pub attributes: sqlx::types::Json<Map<String, Value>>,
    pub opted_out: bool,
    pub opted_out_at: Option<DateTime<Utc>>,
    pub opt_out_reason: Option<String>,
    pub opt_out_source: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row an import did not take, and why. `row` is 0-based for a JSON array (its index)
/// and 1-based for a CSV (data rows, the header not counted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub row: u64,
    /// The value as given (the number, or the whole line when the row itself is broken).
    pub raw: String,
    /// Stable code, e.g. `TOO_SHORT`, `NOT_A_NUMBER`, `FIXED_LINE`.
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
    /// The field at fault, e.g. `mobile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
