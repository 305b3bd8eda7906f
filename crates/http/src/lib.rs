//! What the api-gateway and the webhook-worker share: the problem+json error type,
//! extractors that answer 4xx problem+json on bad input, the middleware stack, health
//! and readiness routes, and a server entry point with graceful shutdown.

pub mod error;
pub mod extract;
pub mod health;
pub mod middleware;
pub mod server;
pub mod service;

pub use error::{ApiError, FieldError};
