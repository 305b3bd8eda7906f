//! Handling one delivery: dedupe check, the handler, then ack, retry or dead-letter.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::Instrument;

use crate::consumer::{Consumer, RetryOutcome};
use crate::error::QueueError;
use crate::handler::{Handler, HandlerError};
use crate::message::Delivery;
use crate::queue::OnceClaim;

/// How one delivery ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Processed,
    Duplicate,
    Retried,
    DeadLettered,
    /// Someone else settled it first.
    Stale,
    Failed,
}

/// One delivery, inside a span that carries the correlation id.
pub(crate) async fn process<H: Handler>(
    consumer: Consumer,
    handler: Arc<H>,
    delivery: Delivery,
) -> Outcome {
    let m = &delivery.message;
    let span = tracing::info_span!(
        "queue.job",
        queue.stream = consumer.queue().name(),
        message.id = %m.id,
        message.kind = %m.kind,
        message.attempt = m.attempt,
        correlation_id = tracing::field::Empty,
    );
    if let Some(c) = &m.correlation_id {
        span.record("correlation_id", c.as_str());
    }
    settle(&consumer, handler.as_ref(), delivery)
        .instrument(span)
        .await
}

async fn settle<H: Handler>(consumer: &Consumer, handler: &H, delivery: Delivery) -> Outcome {
    let queue = consumer.queue();
    let stream = queue.name().to_owned();
    let dedupe_ttl = queue.config().dedupe_ttl;
    if dedupe_ttl.is_some() {
        let lease = queue.config().visibility_timeout;
        match queue
            .claim_once(consumer.group(), &delivery.message.id, lease)
            .await
        {
            Ok(OnceClaim::Acquired) => {}
            Ok(OnceClaim::Done) => {
                tracing::debug!("already applied; acknowledging the duplicate");
                return match consumer.ack(&delivery).await {
                    Ok(()) => Outcome::Duplicate,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not acknowledge a duplicate");
                        Outcome::Failed
                    }
                };
            }
            Ok(OnceClaim::InProgress) => {
                tracing::debug!(
                    "another handler is applying this message; leaving the copy pending"
                );
                return Outcome::Stale;
            }
            Err(e) => {
                tracing::warn!(error = %e, "dedupe check failed; leaving the entry pending");
                return Outcome::Failed;
            }
        }
    }

    let started = Instant::now();
    let result = handler.handle(delivery.clone()).await;
    metrics::histogram!("queue_handle_seconds", "stream" => stream.clone())
        .record(started.elapsed().as_secs_f64());
    let retried = |outcome: Result<RetryOutcome, QueueError>, reason: &str| match outcome {
        Ok(RetryOutcome::Scheduled { delay }) => {
            tracing::warn!(error = reason, retry_in = ?delay, "job failed; retry scheduled");
            Outcome::Retried
        }
        Ok(RetryOutcome::DeadLettered) => {
            tracing::error!(
                error = reason,
                "job failed on its last attempt; dead-lettered"
            );
            Outcome::DeadLettered
        }
        Ok(RetryOutcome::NotPending) => Outcome::Stale,
        Err(e) => {
            tracing::warn!(error = %e, "could not schedule the retry; the entry stays pending");
            Outcome::Failed
        }
    };
    if result.is_err() && dedupe_ttl.is_some() {
        if let Err(e) = queue
            .release_once(consumer.group(), &delivery.message.id)
            .await
        {
            tracing::warn!(error = %e, "could not release the dedupe claim; the retry waits for its lease to expire");
        }
    }
    match result {
        Ok(()) => {
            if let Some(ttl) = dedupe_ttl {
                if let Err(e) = queue
                    .mark_done(consumer.group(), &delivery.message.id, ttl)
                    .await
                {
                    tracing::warn!(error = %e, "could not mark the job done; a duplicate would be applied again");
                }
            }
            if let Err(e) = consumer.ack(&delivery).await {
                tracing::warn!(error = %e, "ack failed; the entry will be re-claimed and skipped as done");
            }
            metrics::counter!("queue_processed_total", "stream" => stream).increment(1);
            Outcome::Processed
        }
        Err(HandlerError::Retry(reason)) => {
            retried(consumer.retry(&delivery, &reason).await, &reason)
        }
        Err(HandlerError::RetryAfter { delay, reason }) => retried(
            consumer.retry_after(&delivery, &reason, delay).await,
            &reason,
        ),
        Err(HandlerError::Permanent(reason)) => {
            match consumer.dead_letter(&delivery, &reason).await {
                Ok(true) => {
                    tracing::error!(error = %reason, "job failed permanently; dead-lettered");
                    Outcome::DeadLettered
                }
                Ok(false) => Outcome::Stale,
                Err(e) => {
                    tracing::warn!(error = %e, "could not dead-letter the job; the entry stays pending");
                    Outcome::Failed
                }
            }
        }
    }
}
