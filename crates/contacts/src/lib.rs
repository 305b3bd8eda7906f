//! Contacts: the audience a vendor messages.
//!
//! - [`phone`]: every number is parsed with libphonenumber to E.164 and stored as digits
//!   without `+`; a number that cannot be a WhatsApp recipient is rejected with a reason.
//! - [`csv_source`]: a streaming CSV reader (BOM, CRLF/LF, `;` or `,`, quoted fields) that
//!   yields one row at a time with its row number and byte offset, so an import can resume.
//! - [`Contacts`]: the service. Bulk JSON imports run inline; CSV uploads are stored, answered
//!   with an import job and processed in chunks (one transaction each) by the worker-pool;
//!   the directory (list, search, get, patch, delete, opt-out) and contact lists.
//!
//! Everything done for a user runs in `kloyst_db::begin_as_user` (RLS on their vendor) and
//! filters by the vendor id from the token; every contact change leaves a `contact_changes`
//! row (written by triggers, tagged with the import job, actor and request id).

pub mod attributes;
pub mod csv_source;
mod cursor;
mod error;
pub mod model;
pub mod phone;
mod repo;
mod service;

pub use error::{ContactsError, Internal};
pub use service::{
    Contacts, ContactsSettings, ImportRunner, ImportRunnerSettings, RunImport, RunOutcome,
};
