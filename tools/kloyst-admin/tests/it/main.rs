//! Runs the built `kloyst-admin` binary against a fresh test database (kloyst-testkit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod dead_letters;
mod rate_cards;
