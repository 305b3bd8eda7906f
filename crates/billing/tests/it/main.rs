//! Integration tests of the ledger against the real Postgres: a fresh database per test
//! (kloyst-testkit), vendors and wallets inserted as the owner, every posting through the
//! crate's API, and the books checked with `wallet_invariant_violations` after each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod batch;
mod batcher;
mod concurrency;
mod helpers;
mod idempotency;
mod postings;
mod properties;
