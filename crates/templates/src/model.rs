//! What the service accepts and returns; serialised as the API's JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use kloyst_core::page::{Page, PageRequest};

/// `POST /v1/templates`: Meta's own template shape (components as Meta defines them).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Lower-case letters, digits and `_`; at most 512 characters.
    pub name: String,
    /// Meta's language code, e.g. `en`, `en_US`, `pt_BR` (`-` is read as `_`).
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION` (any case).
    pub category: String,
    /// HEADER?, BODY (exactly one), FOOTER?, BUTTONS?, as Meta's component objects.
    pub components: Vec<Value>,
    /// `POSITIONAL` (`{{1}}`, the default) or `NAMED` (`{{first_name}}`).
    #[serde(default)]
    pub parameter_format: Option<String>,
}

/// `GET /v1/templates?…`: the page and the filters (all optional, combined with AND).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateFilter {
    /// 1–200, default 50; larger values are capped at 200.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (with the same filters).
    #[serde(default)]
    pub cursor: Option<String>,
    /// One of the statuses (e.g. `APPROVED`).
    #[serde(default)]
    pub status: Option<String>,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`: the category asked for.
    #[serde(default)]
    pub category: Option<String>,
    /// Prefix of the template name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A template as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct TemplateView {
    pub id: Uuid,
    pub name: String,
    pub language: String,
    /// The category asked for.
    pub category: String,
    /// The category Meta assigned, when it re-categorised the template (changes the price).
    pub meta_category: Option<String>,
    pub parameter_format: String,
    pub components: sqlx::types::Json<Value>,
    /// Number of body placeholders a send must fill.
    pub param_count: i16,
    /// PENDING (in review, or not yet sent to Meta), SUBMIT_FAILED, APPROVED, REJECTED, …
    pub status: String,
    /// Meta's last event for it, as Meta names it (e.g. `REINSTATED`).
    pub meta_status: Option<String>,
    pub rejection_reason: Option<String>,
    pub rejection_info: Option<sqlx::types::Json<Value>>,
    pub quality_rating: Option<String>,
    pub meta_template_id: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// Why Meta refused the creation call (status SUBMIT_FAILED).
    pub submit_error: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The statuses a template can have (the table's CHECK).
pub const STATUSES: [&str; 13] = [
    "PENDING",
    "SUBMIT_FAILED",
    "APPROVED",
    "REJECTED",
    "PAUSED",
    "DISABLED",
    "IN_APPEAL",
    "FLAGGED",
    "LIMIT_EXCEEDED",
    "LOCKED",
    "PENDING_DELETION",
    "DELETED",
    "ARCHIVED",
];

pub const CATEGORIES: [&str; 3] = ["MARKETING", "UTILITY", "AUTHENTICATION"];
