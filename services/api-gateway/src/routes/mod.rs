//! The `/v1` routes. Each handler destructures its extractors, calls one service function
//! and maps the result; the rules live in the domain crates.

pub mod api_keys;
pub mod auth;
pub mod campaigns;
pub mod contacts;
mod idempotency;
pub mod imports;
pub mod messages;
pub mod pricing;
pub mod templates;
pub mod users;
pub mod vendor;
pub mod wallet;
