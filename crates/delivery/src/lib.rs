//! Delivery statuses. Meta's `statuses[]` are parsed out of the webhook inbox and stored, one
//! row per (wamid, status), in `message_status_events`, folded into message logs in any order
//! ([`state`]) and charged exactly once for delivered messages. The webhook processing does it
//! inline, one call per batch ([`StatusApplier::apply_received`]); the [`StatusApplier`]'s own
//! queue holds the statuses parked before their message existed and replayed dead letters
//! ([`store_statuses`] stores into that queue directly).

mod apply;
mod books;
mod dead;
mod error;
mod receive;
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
pub use receive::{ReceivedReport, ReceivedStatuses};
pub use settings::ApplierSettings;
pub use settle::{
    settle_campaigns, supervise_settlement, SettleReport, SettlementError, SettlementSettings,
};
pub use state::{Charge, MessageState, Status};
pub use store::{store_statuses, StatusSource, StoredStatuses};
