//! The simulator started in-process on port 0, posting to a small in-test webhook receiver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test

mod binary;
mod control;
mod helpers;
mod razorpay;
mod razorpay_support;
mod sends;
mod templates;
mod webhooks;
