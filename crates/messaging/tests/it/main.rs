//! Integration tests of kloyst-messaging against the real Postgres: a fresh, migrated
//! database per test (kloyst-testkit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod consent;
mod helpers;
mod routing;
