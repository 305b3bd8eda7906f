//! Delivery statuses. Meta's `statuses[]` are parsed out of the webhook inbox and stored, one
//! row per (wamid, status), in `message_status_events` ([`store_statuses`]); the
//! [`StatusApplier`] folds them into message logs in any order ([`state`]) and charges the
//! wallet for delivered messages exactly once.

mod apply;
mod books;
mod dead;
mod error;
mod settings;
mod settle;
pub mod state;
mod store;

pub use apply::{ApplyReport, StatusApplier, NOT_OUTBOUND, NO_MESSAGE};
pub use books::{reconcile_books, reconcile_books_if_due, BooksReport, Difference, DifferenceKind};
pub use dead::{list_dead_statuses, replay_dead_statuses, DeadStatus, DeadStatusError};
pub use error::DeliveryError;
/// The pricing engine the applier is built with (re-exported so services need no direct
/// dependency on `kloyst-pricing` to start it).
pub use kloyst_pricing::Pricing;
pub use settings::ApplierSettings;
pub use settle::{
    settle_campaigns, supervise_settlement, SettleReport, SettlementError, SettlementSettings,
};
pub use state::{Charge, MessageState, Status};
pub use store::{store_statuses, StatusSource, StoredStatuses};
