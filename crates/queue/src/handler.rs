//! What the runner calls for each delivery, and how a handler reports failure.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::error::QueueError;
use crate::message::Delivery;

/// How a handler failed, which decides what happens to the message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// May work later (timeout, 5xx, rate limit): retried with backoff until `max_attempts`.
    #[error("{0}")]
    Retry(String),
    /// As `Retry`, after the given delay (a `Retry-After` header).
    #[error("{reason} (retry after {delay:?})")]
    RetryAfter {
        /// How long to wait.
        delay: Duration,
        /// What went wrong.
        reason: String,
    },
    /// Will never work (invalid payload, rejected by Meta): dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

impl HandlerError {
    /// A retryable failure from any error.
    pub fn retry(error: impl Display) -> Self {
        Self::Retry(error.to_string())
    }

    /// A permanent failure from any error.
    pub fn permanent(error: impl Display) -> Self {
        Self::Permanent(error.to_string())
    }
}

/// So handlers can `delivery.decode::<J>()?`: a payload that does not decode never will
/// (permanent); Redis being away is worth retrying.
impl From<QueueError> for HandlerError {
    fn from(error: QueueError) -> Self {
        if error.is_transient() {
            Self::retry(error)
        } else {
            Self::permanent(error)
        }
    }
}

/// Handles one delivery. Implemented for `Fn(Delivery) -> impl Future<Output = Result<(), HandlerError>>`.
pub trait Handler: Send + Sync + 'static {
    /// Applies the message. Must finish within the visibility timeout, or another consumer
    /// re-claims the entry and it is handled twice.
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    fn handle(&self, delivery: Delivery) -> impl Future<Output = Result<(), HandlerError>> + Send {
        self(delivery)
    }
}
