//! Contact lists as the API shows them, and the inputs of the directory and list routes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// `GET /v1/contacts?…`: the page and the filters (all optional, combined with AND).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactFilter {
    /// 1–200, default 50; larger values are capped at 200.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (with the same filters).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Only members of this list of the caller's vendor.
    #[serde(default)]
    pub list_id: Option<Uuid>,
    /// Case-insensitive prefix of the name (`attributes.name`); blank means no filter.
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Leading digits of the stored number (country code first); `+`, spaces, `-`, `(`, `)`
    /// and `.` are ignored, e.g. `+91 98` → `9198`.
    #[serde(default)]
    pub mobile_prefix: Option<String>,
    #[serde(default)]
    pub opted_out: Option<bool>,
}

/// `PATCH /v1/contacts/{id}`. Absent fields are kept.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    /// A new number in any common format; parsed with the vendor's default country.
    #[serde(default)]
    pub mobile: Option<String>,
    /// Merged into the stored attributes: a given key is overwritten, a key given as
    /// `null` is removed, a key not given is kept. Values are strings (≤ 1,000 characters),
    /// numbers or booleans; keys 1–64 characters; at most 50 keys after the merge.
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
    /// `true` opts out (source `API`, now); `false` opts back in (clears the opt-out).
    #[serde(default)]
    pub opted_out: Option<bool>,
    /// Why (≤ 1,000 characters); only for a contact that is, or is being, opted out.
    #[serde(default)]
    pub opt_out_reason: Option<String>,
}

/// A contact list as the API shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ContactListView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// Maintained by the database on every membership change.
    pub member_count: i32,
    /// The user who created it (`None` for lists made by the system).
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /v1/contact-lists`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContactList {
    /// 1–200 characters after trimming; unique within the vendor.
    pub name: String,
    /// ≤ 2,000 characters; blank means none.
    #[serde(default)]
    pub description: Option<String>,
}

/// `POST` and `DELETE /v1/contact-lists/{id}/members`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListMembersInput {
    /// 1–1,000 contact ids (repeats count once).
    pub contact_ids: Vec<Uuid>,
}

/// The answer to adding members: how many were not members before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MembersAdded {
    pub added: u64,
}

/// The answer to removing members: how many were members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MembersRemoved {
    pub removed: u64,
}
