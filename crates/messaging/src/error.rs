//! The one error type of this crate. Every variant is on our side (the webhook processor
//! retries the change); odd input from Meta is never an error, only skipped or counted.

#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),

    /// A message could not be turned into the JSON stored as its body.
    #[error("encoding a message body: {0}")]
    Encode(#[from] serde_json::Error),
}
