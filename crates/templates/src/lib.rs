//! WhatsApp message templates.
//!
//! - [`validate`]: Meta's rules (name, language, category, components, placeholders and
//!   their examples), checked before anything is saved.
//! - [`Templates`]: the vendor-facing service (create, list, get). A new template is saved
//!   PENDING under a vendor-prefixed [`meta_name`] (unique under the shared WABA) and its
//!   [`SubmitTemplate`] job is queued through the outbox in the same transaction.
//! - [`TemplateSubmitter`]: the worker-pool's half: sends the template to Meta within Meta's
//!   hourly creation limit per WABA.
//! - [`apply_status_update`]: Meta's review results (`message_template_status_update`),
//!   applied in order by the webhook-worker.

mod error;
pub mod model;
mod repo;
mod service;
mod settings;
mod status;
mod submit;
pub mod validate;

pub use error::{Internal, TemplatesError};
pub use service::{meta_name, SubmitTemplate, Templates};
pub use settings::TemplateSubmitterSettings;
pub use status::{apply_status_update, status_for_event, TemplateStatusOutcome};
pub use submit::{SubmitError, SubmitOutcome, TemplateSubmitter};
