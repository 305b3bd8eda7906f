//! Typed configuration read from the environment (12-factor).
//!
//! Each service composes the sections it needs from [`sections`]; a missing or
//! malformed value fails start-up with one line naming the variable.

mod env;
mod secret;
pub mod sections;

pub use env::{ConfigError, Env};
pub use secret::Secret;
