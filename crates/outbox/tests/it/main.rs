//! The outbox against the real Postgres and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod helpers;
mod relay;
