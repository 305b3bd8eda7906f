//! The transactional outbox.
//!
//! A domain change and the event announcing it are written in one Postgres transaction
//! ([`enqueue`]); the relay ([`Relay`]) later publishes committed events to Redis streams
//! and marks them published. A crash between commit and publish loses nothing (the row is
//! still unpublished); a crash between publish and mark publishes again (at least once),
//! and consumers dedupe on the event id, which travels as the message id.

mod relay;
mod store;

pub use relay::{Relay, RelayError, RelaySettings};
pub use store::{
    backlog, claim, enqueue, enqueue_job, mark_published, prune_published, NewEvent, OutboxError,
    OutboxRow, CHANNEL,
};
