//! Integration tests of the Cloud API client against the simulator (`meta-sim`, in-process on
//! port 0) and against local servers that misbehave in ways the simulator does not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod helpers;
mod send;
mod spans;
mod templates;
mod transport;
