//! Integration tests of the templates crate against the real Postgres (a fresh database per
//! test, kloyst-testkit) and Meta's simulator (meta-sim, in-process on port 0).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod create;
mod helpers;
mod status;
mod submit;
