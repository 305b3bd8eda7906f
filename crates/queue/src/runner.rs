//! The consumer loop: fetch, hand to the handler, settle (ack / retry / dead-letter), repeat;
//! plus the periodic upkeep (promote due retries, re-claim abandoned entries, gauges).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::consumer::Consumer;
use crate::handler::Handler;
use crate::message::Delivery;
use crate::settle::{process, Outcome};

/// What a runner did before it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunReport {
    /// Handled successfully (and acknowledged, unless the ack failed).
    pub processed: u64,
    /// Skipped because the dedupe mark said they were already applied.
    pub duplicates: u64,
    /// Scheduled for a later attempt.
    pub retried: u64,
    /// Moved to the dead-letter stream by this runner.
    pub dead_lettered: u64,
    /// Left pending after a Redis error or a handler panic (re-claimed later).
    pub failed: u64,
    /// In flight when the shutdown grace ran out (re-claimed later).
    pub abandoned: u64,
}

impl RunReport {
    fn tally(&mut self, done: Result<Outcome, JoinError>) {
        match done {
            Ok(Outcome::Processed) => self.processed += 1,
            Ok(Outcome::Duplicate) => self.duplicates += 1,
            Ok(Outcome::Retried) => self.retried += 1,
            Ok(Outcome::DeadLettered) => self.dead_lettered += 1,
            Ok(Outcome::Stale) => {}
            Ok(Outcome::Failed) => self.failed += 1,
            Err(e) if e.is_cancelled() => self.abandoned += 1,
            Err(e) => {
                tracing::error!(error = %e, "handler panicked; its entry stays pending and will be re-claimed");
                self.failed += 1;
            }
        }
    }
}

/// Runs `consumer` until `shutdown` is cancelled, handling up to `concurrency` deliveries at
/// once. Never fails: Redis errors are logged and retried after `error_backoff`.
///
/// On shutdown it stops fetching, lets in-flight handlers finish within `shutdown_grace`, and
/// returns. What it did not finish (including entries a cancelled fetch may have delivered)
/// stays pending and is re-claimed by another consumer after the visibility timeout.
pub async fn run_consumer<H: Handler>(
    consumer: Consumer,
    handler: H,
    shutdown: CancellationToken,
) -> RunReport {
    let cfg = consumer.queue().config().clone();
    let concurrency = cfg.concurrency.max(1);
    let handler = Arc::new(handler);
    // Handlers run as tasks of this set, so none outlives the runner.
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let mut report = RunReport::default();
    let mut next_upkeep = Instant::now();
    let stream = consumer.queue().name().to_owned();
    tracing::info!(queue.stream = %stream, consumer = consumer.name(), concurrency, "consumer started");

    while !shutdown.is_cancelled() {
        while let Some(done) = tasks.try_join_next() {
            report.tally(done);
        }
        if tasks.len() >= concurrency {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(done) = tasks.join_next() => report.tally(done),
            }
            continue;
        }

        let mut batch = Vec::new();
        if Instant::now() >= next_upkeep {
            batch = upkeep(&consumer, concurrency - tasks.len()).await;
            next_upkeep = Instant::now() + cfg.maintenance_interval;
        }
        let want = concurrency - tasks.len() - batch.len();
        let mut failed = false;
        if want > 0 {
            // Do not wait for new entries while re-claimed ones are ready, nor past the next upkeep.
            let block = if batch.is_empty() {
                cfg.fetch_block
                    .min(next_upkeep.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(1))
            } else {
                Duration::ZERO
            };
            let fetched = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                fetched = consumer.fetch(want, block) => fetched,
            };
            match fetched {
                Ok(deliveries) => batch.extend(deliveries),
                Err(e) => {
                    tracing::warn!(queue.stream = %stream, error = %e, "fetch failed; backing off");
                    failed = true;
                }
            }
        }
        for delivery in batch {
            tasks.spawn(process(consumer.clone(), Arc::clone(&handler), delivery));
        }
        if failed {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(cfg.error_backoff) => {}
            }
        }
    }

    if !tasks.is_empty() {
        tracing::info!(queue.stream = %stream, in_flight = tasks.len(), "shutting down: finishing in-flight jobs");
    }
    let drained = tokio::time::timeout(cfg.shutdown_grace, async {
        while let Some(done) = tasks.join_next().await {
            report.tally(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            queue.stream = %stream,
            abandoned = tasks.len(),
            "shutdown grace over; abandoned jobs stay pending and will be re-claimed"
        );
        tasks.abort_all();
        while let Some(done) = tasks.join_next().await {
            report.tally(done);
        }
    }
    tracing::info!(queue.stream = %stream, ?report, "consumer stopped");
    report
}

/// Promotes due retries, records the gauges and re-claims up to `free` abandoned entries.
/// Stops at the first error (Redis is likely down; the fetch will report it too).
async fn upkeep(consumer: &Consumer, free: usize) -> Vec<Delivery> {
    let queue = consumer.queue();
    let result = async {
        // A few rounds at most, so a large backlog of due retries cannot starve fetching.
        for _ in 0..10 {
            if queue.promote_due().await? < queue.config().promote_batch {
                break;
            }
        }
        queue.record_metrics().await?;
        consumer.reclaim(free).await
    }
    .await;
    match result {
        Ok(reclaimed) => {
            if !reclaimed.is_empty() {
                tracing::info!(
                    queue.stream = queue.name(),
                    count = reclaimed.len(),
                    "re-claimed abandoned entries"
                );
            }
            reclaimed
        }
        Err(e) => {
            tracing::warn!(queue.stream = queue.name(), error = %e, "queue upkeep failed");
            Vec::new()
        }
    }
}
