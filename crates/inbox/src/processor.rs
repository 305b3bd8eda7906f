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
#[derive(Clone, Debug)]
pub struct Processed<D = ()> {
    /// What the row turned out to be (e.g. the change fields), stored in `event_type`.
    pub event_type: Option<String>,
    /// Work the row leaves for the end of its batch ([`InboxHandler::finish`]).
    pub deferred: Option<D>,
}

impl<D> Processed<D> {
    /// Applied, with nothing left for the end of the batch.
    pub fn done(event_type: Option<String>) -> Self {
        Self {
            event_type,
            deferred: None,
        }
    }
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
///
/// A row may also leave work for the end of its batch ([`Processed::deferred`]): the
/// deferred work of every row that applied is handed to [`InboxHandler::finish`] once, in the
/// batch's transaction, so work that is cheaper in bulk (delivery statuses: one lock of their
/// messages, one insert, one debit per wallet) is done once per batch rather than per row. If
/// `finish` fails, the batch is rolled back whole and its rows are applied again one per
/// transaction, so only the row whose work cannot be done fails.
pub trait InboxHandler: Send + Sync + 'static {
    /// What a row leaves for the end of its batch.
    type Deferred: Send;

    fn handle(
        &self,
        conn: &mut PgConnection,
        row: &ClaimedRow,
    ) -> impl Future<Output = Result<Processed<Self::Deferred>, HandlerFailure>> + Send;

    /// Does the batch's deferred work (never called with an empty list).
    fn finish(
        &self,
        conn: &mut PgConnection,
        deferred: Vec<Self::Deferred>,
    ) -> impl Future<Output = Result<(), HandlerFailure>> + Send;
}

/// What became of one row of a batch that did not fail.
enum RowOutcome<D> {
    /// Applied, with the work it leaves for the end of the batch.
    Applied(Option<D>),
    /// Its lease ran out and another processor took it: not applied here.
    LeaseLost,
}

/// The rows of a batch that applied, and those that failed alone.
type BatchOutcome<'r> = (Vec<&'r ClaimedRow>, Vec<(&'r ClaimedRow, HandlerFailure)>);

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
    /// up to `batch` rows and `batch_bytes` of bodies. Returns how many rows it claimed.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let batch = self.settings.batch.max(1);
        let limit = i64::try_from(self.settings.concurrency * batch).unwrap_or(64);
        let rows = repo::claim_due(&self.pool, limit, self.settings.lease).await?;
        let claimed = rows.len();
        let batches = split_batches(rows, batch, self.settings.batch_bytes);
        futures::stream::iter(batches)
            .for_each_concurrent(self.settings.concurrency, |rows| self.process_batch(rows))
            .await;
        Ok(claimed)
    }

    /// One transaction for the batch (one commit, one WAL flush), a savepoint per row: a row
    /// that fails is rolled back alone and retried, the others commit. When the batch's
    /// deferred work fails, its rows are applied again one per transaction.
    async fn process_batch(&self, rows: Vec<ClaimedRow>) {
        let (applied, failures) = match self.apply_batch(&rows).await {
            Ok(outcome) => outcome,
            Err(failure) if rows.len() > 1 => {
                tracing::warn!(
                    rows = rows.len(),
                    error = %failure,
                    "a batch's deferred work failed; applying its rows one by one"
                );
                let (mut applied, mut failures) = (Vec::new(), Vec::new());
                for row in &rows {
                    match self.apply_batch(std::slice::from_ref(row)).await {
                        Ok((one_applied, one_failed)) => {
                            applied.extend(one_applied);
                            failures.extend(one_failed);
                        }
                        Err(failure) => failures.push((row, failure)),
                    }
                }
                (applied, failures)
            }
            // A batch of one (or none): the failure is its row's.
            Err(failure) => (
                Vec::new(),
                rows.first().map(|row| (row, failure)).into_iter().collect(),
            ),
        };
        for row in &applied {
            metrics::counter!("webhook_inbox_processed_total", "source" => row.source.clone())
                .increment(1);
        }
        for (row, failure) in failures {
            self.record_failure(row, &failure).await;
        }
    }

    /// Applies `rows` in one transaction: the rows that applied and the rows that failed
    /// alone, or the failure of the batch's deferred work (then nothing of it committed).
    async fn apply_batch<'r>(
        &self,
        rows: &'r [ClaimedRow],
    ) -> Result<BatchOutcome<'r>, HandlerFailure> {
        let mut failures: Vec<(&ClaimedRow, HandlerFailure)> = Vec::new();
        let mut applied: Vec<&ClaimedRow> = Vec::new();
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(error) => {
                let reason = format!("database error: {error}");
                let failures = rows
                    .iter()
                    .map(|row| (row, HandlerFailure::retry(&reason)))
                    .collect();
                return Ok((applied, failures));
            }
        };
        let mut deferred = Vec::new();
        for row in rows {
            match self.apply(&mut tx, row).await {
                Ok(RowOutcome::Applied(work)) => {
                    applied.push(row);
                    deferred.extend(work);
                }
                Ok(RowOutcome::LeaseLost) => {}
                Err(failure) => failures.push((row, failure)),
            }
        }
        if !deferred.is_empty() {
            // On failure the transaction is dropped: everything of the batch rolls back.
            self.handler.finish(&mut tx, deferred).await?;
        }
        if let Err(error) = tx.commit().await {
            let reason = format!("database error at commit: {error}");
            failures.extend(
                applied
                    .drain(..)
                    .map(|row| (row, HandlerFailure::retry(&reason))),
            );
        }
        Ok((applied, failures))
    }

    /// The handler and the PROCESSED mark, under a savepoint of the batch's transaction.
    #[tracing::instrument(name = "inbox.process", skip_all, fields(inbox_id = row.id, source = %row.source, attempt = row.attempts))]
    async fn apply(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        row: &ClaimedRow,
    ) -> Result<RowOutcome<H::Deferred>, HandlerFailure> {
        let mut savepoint = sqlx::Connection::begin(&mut **tx).await?;
        let outcome = match self.handler.handle(&mut savepoint, row).await {
            Ok(processed) => repo::mark_processed(
                &mut savepoint,
                row.id,
                row.attempts,
                processed.event_type.as_deref(),
            )
            .await
            .map(|marked| match marked {
                true => RowOutcome::Applied(processed.deferred),
                false => RowOutcome::LeaseLost,
            })
            .map_err(HandlerFailure::from),
            Err(failure) => Err(failure),
        };
        match outcome {
            Ok(RowOutcome::Applied(deferred)) => {
                savepoint.commit().await?;
                Ok(RowOutcome::Applied(deferred))
            }
            Ok(RowOutcome::LeaseLost) => {
                tracing::warn!(
                    inbox_id = row.id,
                    "inbox row lost its lease; not applied here"
                );
                savepoint.rollback().await?;
                Ok(RowOutcome::LeaseLost)
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

/// Splits claimed rows, in order, into batches of at most `rows` rows and `bytes` body bytes
/// (a row alone may exceed `bytes`).
fn split_batches(claimed: Vec<ClaimedRow>, rows: usize, bytes: usize) -> Vec<Vec<ClaimedRow>> {
    let mut batches: Vec<Vec<ClaimedRow>> = Vec::new();
    let mut size = 0;
    for row in claimed {
        let full = batches
            .last()
            .is_none_or(|last| last.len() >= rows || size + row.raw_body.len() > bytes);
        if full {
            batches.push(Vec::new());
            size = 0;
        }
        size += row.raw_body.len();
        if let Some(last) = batches.last_mut() {
            last.push(row);
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, body_len: usize) -> ClaimedRow {
        ClaimedRow {
            id,
            source: "META".into(),
            raw_body: vec![b'x'; body_len],
            headers: sqlx::types::Json(serde_json::json!({})),
            attempts: 1,
            received_at: chrono::Utc::now(),
        }
    }

    fn shape(batches: &[Vec<ClaimedRow>]) -> Vec<Vec<i64>> {
        batches
            .iter()
            .map(|b| b.iter().map(|r| r.id).collect())
            .collect()
    }

    #[test]
    fn batches_close_on_rows_or_bytes_in_order() {
        let small: Vec<ClaimedRow> = (1..=5).map(|id| row(id, 10)).collect();
        assert_eq!(
            shape(&split_batches(small, 2, 1000)),
            [vec![1, 2], vec![3, 4], vec![5]]
        );
        let mixed = vec![
            row(1, 400),
            row(2, 400),
            row(3, 300),
            row(4, 2000),
            row(5, 1),
        ];
        assert_eq!(
            shape(&split_batches(mixed, 32, 1000)),
            [vec![1, 2], vec![3], vec![4], vec![5]],
            "a batch closes before the row that would pass the byte limit; a large row is alone"
        );
        assert!(split_batches(Vec::new(), 32, 1000).is_empty());
    }
}
