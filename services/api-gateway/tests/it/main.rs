//! api-gateway against the real Postgres and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod api_keys;
mod campaigns;
mod client;
mod contacts;
mod delivery;
mod fixtures;
mod health;
mod identity;
mod imports;
mod messages;
mod pricing;
mod process;
mod quote;
mod recharge;
mod retry_failed;
mod templates;
mod tenancy;
mod wallet;
