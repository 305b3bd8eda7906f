//! Razorpay events applied against the real Postgres: a fresh database per test, orders
//! inserted as the owner (as `init` leaves them), every event through
//! `apply_payment_event` in its own transaction, the books checked after each test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod apply;
mod concurrency;
mod support;
