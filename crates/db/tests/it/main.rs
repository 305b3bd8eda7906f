//! Migrations and the tenant wall against the real Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod read;
mod tenant;
