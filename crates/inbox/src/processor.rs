//! Processing stored webhooks: claim due rows, apply each in its own transaction together
//! with marking it processed (so a row is applied once or not at all), retry failures with
//! exponential backoff, dead-letter what keeps failing or can never succeed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::model::ClaimedRow;
use crate::notify::InboxNotifier;
use crate::repo;
use crate::settings::ProcessorSettings;

/// A successfully applied row.
#[derive(Clone, Debug, Default)]
pub struct Processed {
    /// What the row turned out to be (e.g. the change fields), stored in `event_type`.
    pub event_type: Option<String>,
}

/// Why a row could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum HandlerFailure {
    /// May succeed later (the database, a row it depends on not there yet): retried with
    /// backoff, dead-lettered after the last attempt.
    #[error("{reason}")]
    Retry {
        reason: String,
        event_type: Option<String>,
    },
    /// Can never succeed as it is (the body is not what the source sends): dead-lettered at
    /// once. Replay after fixing the cause.
    #[error("{reason}")]
    Permanent {
        reason: String,
        event_type: Option<String>,
    },
}

impl HandlerFailure {
    pub fn retry(reason: impl std::fmt::Display) -> Self {
        Self::Retry {
            reason: reason.to_string(),
            event_type: None,
        }
    }

    pub fn permanent(reason: impl std::fmt::Display) -> Self {
        Self::Permanent {
            reason: reason.to_string(),
            event_type: None,
        }
    }

    /// The same failure, saying what the row turned out to be (stored in `event_type`).
    pub fn with_event_type(self, event_type: Option<String>) -> Self {
        match self {
            Self::Retry { reason, .. } => Self::Retry { reason, event_type },
            Self::Permanent { reason, .. } => Self::Permanent { reason, event_type },
        }
    }

    fn event_type(&self) -> Option<&str> {
        match self {
            Self::Retry { event_type, .. } | Self::Permanent { event_type, .. } => {
                event_type.as_deref()
            }
        }
    }
}

impl From<sqlx::Error> for HandlerFailure {
    fn from(error: sqlx::Error) -> Self {
        Self::retry(format!("database error: {error}"))
    }
}

/// Applies one source's webhooks. `conn` is the row's transaction: everything written there
/// commits together with the row's PROCESSED mark, or not at all.
pub trait InboxHandler: Send + Sync + 'static {
    fn handle(
        &self,
        conn: &mut PgConnection,
        row: &ClaimedRow,
    ) -> impl Future<Output = Result<Processed, HandlerFailure>> + Send;
}

/// Runs an [`InboxHandler`] over the inbox until shut down.
pub struct InboxProcessor<H> {
    pool: PgPool,
    handler: Arc<H>,
    notifier: Option<InboxNotifier>,
    settings: ProcessorSettings,
}

impl<H: InboxHandler> InboxProcessor<H> {
    pub fn new(
        pool: PgPool,
        handler: H,
        notifier: Option<InboxNotifier>,
        settings: ProcessorSettings,
    ) -> Self {
        Self {
            pool,
            handler: Arc::new(handler),
            notifier,
            settings,
        }
    }

    /// Processes due rows until `shutdown`; the row in hand is finished first. With a
    /// concurrency of 0 it only waits for `shutdown` (an intake-only copy).
    pub async fn run(&self, shutdown: CancellationToken) {
        if self.settings.concurrency == 0 {
            tracing::info!("webhook processing disabled in this copy (concurrency 0)");
            shutdown.cancelled().await;
            return;
        }
        let listener = async {
            if let Some(notifier) = &self.notifier {
                notifier.listen(shutdown.clone()).await;
            }
        };
        let work = async {
            while !shutdown.is_cancelled() {
                let processed = match self.run_once().await {
                    Ok(count) => count,
                    Err(error) => {
                        tracing::warn!(%error, "claiming inbox rows failed");
                        0
                    }
                };
                if processed == 0 {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = self.wait() => {}
                    }
                }
            }
        };
        tokio::join!(listener, work);
    }

    async fn wait(&self) {
        match &self.notifier {
            Some(notifier) => notifier.wait(self.settings.poll_interval).await,
            None => tokio::time::sleep(self.settings.poll_interval).await,
        }
    }

    /// Claims due rows and processes them: `concurrency` transactions at once, each applying
    /// up to `batch` rows. Returns how many rows it claimed.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let batch = self.settings.batch.max(1);
        let limit = i64::try_from(self.settings.concurrency * batch).unwrap_or(64);
        let rows = repo::claim_due(&self.pool, limit, self.settings.lease).await?;
        let claimed = rows.len();
        let mut batches: Vec<Vec<ClaimedRow>> = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            batches.push(rows.by_ref().take(batch).collect());
        }
        futures::stream::iter(batches)
            .for_each_concurrent(self.settings.concurrency, |rows| self.process_batch(rows))
            .await;
        Ok(claimed)
    }

    /// One transaction for the batch (one commit, one WAL flush), a savepoint per row: a row
    /// that fails is rolled back alone and retried, the others commit.
    async fn process_batch(&self, rows: Vec<ClaimedRow>) {
        let mut failures: Vec<(ClaimedRow, HandlerFailure)> = Vec::new();
        let mut applied: Vec<ClaimedRow> = Vec::new();
        match self.pool.begin().await {
            Err(error) => {
                let reason = format!("database error: {error}");
                failures.extend(
                    rows.into_iter()
                        .map(|row| (row, HandlerFailure::retry(&reason))),
                );
            }
            Ok(mut tx) => {
                for row in rows {
                    match self.apply(&mut tx, &row).await {
                        Ok(true) => applied.push(row),
                        Ok(false) => {}
                        Err(failure) => failures.push((row, failure)),
                    }
                }
                if let Err(error) = tx.commit().await {
                    let reason = format!("database error at commit: {error}");
                    failures.extend(
                        applied
                            .drain(..)
                            .map(|row| (row, HandlerFailure::retry(&reason))),
                    );
                }
            }
        }
        for row in &applied {
            metrics::counter!("webhook_inbox_processed_total", "source" => row.source.clone())
                .increment(1);
        }
        for (row, failure) in failures {
            self.record_failure(&row, &failure).await;
        }
    }

    /// The handler and the PROCESSED mark, under a savepoint of the batch's transaction.
    /// False when the row's lease ran out and another processor took it (not applied here).
    #[tracing::instrument(name = "inbox.process", skip_all, fields(inbox_id = row.id, source = %row.source, attempt = row.attempts))]
    async fn apply(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        row: &ClaimedRow,
    ) -> Result<bool, HandlerFailure> {
        let mut savepoint = sqlx::Connection::begin(&mut **tx).await?;
        let outcome = match self.handler.handle(&mut savepoint, row).await {
            Ok(processed) => repo::mark_processed(
                &mut savepoint,
                row.id,
                row.attempts,
                processed.event_type.as_deref(),
            )
            .await
            .map_err(HandlerFailure::from),
            Err(failure) => Err(failure),
        };
        match outcome {
            Ok(true) => {
                savepoint.commit().await?;
                Ok(true)
            }
            Ok(false) => {
                tracing::warn!(
                    inbox_id = row.id,
                    "inbox row lost its lease; not applied here"
                );
                savepoint.rollback().await?;
                Ok(false)
            }
            Err(failure) => {
                savepoint.rollback().await?;
                Err(failure)
            }
        }
    }

    async fn record_failure(&self, row: &ClaimedRow, failure: &HandlerFailure) {
        let attempt = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let dead = match failure {
            HandlerFailure::Permanent { .. } => true,
            HandlerFailure::Retry { .. } => row.attempts >= self.settings.max_attempts,
        };
        let retry_in = kloyst_queue::backoff_ceiling(
            attempt,
            self.settings.retry_base,
            self.settings.retry_max,
        );
        // Half fixed, half jitter: spread without ever retrying at once.
        let retry_in = retry_in / 2
            + kloyst_queue::backoff_delay(
                attempt,
                self.settings.retry_base / 2,
                self.settings.retry_max / 2,
                &mut rand::thread_rng(),
            );
        if dead {
            tracing::warn!(inbox_id = row.id, attempts = row.attempts, error = %failure, "webhook dead-lettered");
            metrics::counter!("webhook_inbox_dead_lettered_total", "source" => row.source.clone())
                .increment(1);
        } else {
            tracing::info!(inbox_id = row.id, attempts = row.attempts, retry_in = ?retry_in, error = %failure, "webhook processing failed; will retry");
            metrics::counter!("webhook_inbox_retries_total", "source" => row.source.clone())
                .increment(1);
        }
        let recorded = repo::mark_failed(
            &self.pool,
            row.id,
            row.attempts,
            &failure.to_string(),
            if dead { Duration::ZERO } else { retry_in },
            dead,
            failure.event_type(),
        )
        .await;
        if let Err(error) = recorded {
            // The lease expires and the row is retried; nothing is lost.
            tracing::error!(inbox_id = row.id, %error, "could not record a failed attempt");
        }
    }
}
