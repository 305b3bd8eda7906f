/// Errors of the inbox itself (not of a webhook's processing, see [`crate::HandlerFailure`]).
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The insert that was to store the webhook failed: it is not stored.
    #[error("storing the webhook failed: {0}")]
    Storage(String),
    /// The intake is shutting down or its writer stopped: the webhook was not stored.
    #[error("the inbox intake is not accepting webhooks")]
    IntakeClosed,
}
