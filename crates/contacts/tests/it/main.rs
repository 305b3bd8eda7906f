//! Integration tests of the contacts service against the real Postgres: a fresh database
//! per test (kloyst-testkit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod directory;
mod helpers;
mod imports;
mod lists;
