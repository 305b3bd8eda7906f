//! The webhook inbox: every webhook is stored exactly as received before it is acknowledged,
//! then processed asynchronously; rows that keep failing become dead letters that an operator
//! lists and replays.
//!
//! - [`InboxWriter`]: the intake. Requests hand their row to a writer that groups whatever
//!   arrived meanwhile into one multi-row insert (group commit), so the acknowledgement rate is
//!   not bounded by one commit per webhook.
//! - [`InboxProcessor`]: claims due rows (lease + `SKIP LOCKED`, so any number of copies share
//!   them), runs the source's [`InboxHandler`] in the row's transaction, and retries failures
//!   with backoff until they are dead-lettered.
//! - [`dead_letters`]: listing and replay, for the admin command and the ops endpoint.

pub mod dead_letters;
mod error;
mod intake;
mod model;
mod notify;
mod processor;
mod repo;
mod settings;

pub use error::InboxError;
pub use intake::{InboxWriter, IntakeOutcome};
pub use model::{ClaimedRow, NewWebhook, Source};
pub use notify::InboxNotifier;
pub use processor::{HandlerFailure, InboxHandler, InboxProcessor, Processed};
pub use settings::{IntakeSettings, ProcessorSettings};
