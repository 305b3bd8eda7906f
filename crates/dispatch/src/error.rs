//! What a dispatch step can fail with. Every variant is worth retrying the job for: the
//! claims are idempotent, so a retried job never sends a recipient twice.

use crate::limiter::LimiterError;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("job queue: {0}")]
    Queue(#[from] kloyst_queue::QueueError),
    #[error(transparent)]
    Limiter(#[from] LimiterError),
    /// A campaign rule run by the worker (the watchdog's fail, the scheduler).
    #[error("campaign: {0}")]
    Campaign(#[from] kloyst_campaigns::CampaignError),
    /// A batch's record task panicked; its recipients stay SENDING for the reconciler.
    #[error("recording a batch failed: {0}")]
    Task(String),
}
