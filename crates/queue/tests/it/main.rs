//! Integration tests against the real Redis at `REDIS_URL` (default redis://127.0.0.1:6379).
//! Each test works under its own random key prefix and deletes its keys at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// test code: a failure should stop the test

// clippy.toml allows these inside `#[test]` functions only; the shared helpers below panic on
// setup failure just the same, which is what a test should do.

mod dedupe;
mod helpers;
mod promote;
mod publish;
mod reclaim;
mod retry;
mod runner;
mod stats;
