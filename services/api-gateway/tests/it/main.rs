//! api-gateway against the real Postgres and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod campaigns;
mod client;
mod contacts;
mod fixtures;
mod health;
mod identity;
mod imports;
mod pricing;
mod process;
mod quote;
mod recharge;
mod templates;
mod tenancy;
mod wallet;
