//! Integration tests of the pricing engine against the real Postgres: a fresh, migrated
//! database per test (kloyst-testkit), the shipped sample card loaded through the loader.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod cards;
mod helpers;
mod margins;
mod prices;
