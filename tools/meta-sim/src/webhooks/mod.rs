//! Webhooks the simulator posts: their bodies, batching and delivery.

pub mod batcher;
pub mod delivery;
pub mod payload;
