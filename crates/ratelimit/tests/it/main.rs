//! The limiter against the real Redis, and the layer over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

mod client_ip;
mod fail_open;
mod layer;
mod limiter;
mod quota;
mod support;
