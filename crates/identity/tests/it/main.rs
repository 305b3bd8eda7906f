//! Integration tests of the identity service against the real Postgres and Redis: a fresh
//! database and Redis key prefix per test (kloyst-testkit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod api_keys;
mod audit;
mod helpers;
mod login;
mod otp;
mod registration;
mod team;
mod tenancy;
mod tokens;
mod vendor;
