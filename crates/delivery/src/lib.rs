//! Delivery statuses. Meta's `statuses[]` are parsed out of the webhook inbox and stored, one
//! row per (wamid, status), in `message_status_events`, ready for the applier that moves
//! message logs forward and charges wallets.

mod store;

pub use store::{store_statuses, StatusSource, StoredStatuses};
