//! The middleware stack and extractors over real HTTP: every kind of bad input gets a 4xx
//! problem+json, never a 5xx or a plain-text body.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod stack;
