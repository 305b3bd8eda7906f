//! Group commit: a request hands its webhook to the writer and waits for the commit that
//! stores it. Whatever arrives while every writer is busy goes into the next insert together,
//! so under load one commit (one WAL flush) acknowledges hundreds of webhooks, and when idle a
//! webhook is written at once without waiting for company.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::error::InboxError;
use crate::model::NewWebhook;
use crate::notify::InboxNotifier;
use crate::repo;
use crate::settings::IntakeSettings;

/// What became of a submitted webhook. Either way it is durably in the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntakeOutcome {
    Stored,
    /// Its dedupe key was stored before (a duplicate delivery).
    Duplicate,
}

type Reply = oneshot::Sender<Result<IntakeOutcome, Arc<sqlx::Error>>>;

struct Pending {
    webhook: NewWebhook,
    reply: Reply,
}

/// The intake's handle: cheap to clone; the writer stops when every handle is dropped, after
/// storing what it was given.
#[derive(Clone)]
pub struct InboxWriter {
    sender: mpsc::Sender<Pending>,
}

impl InboxWriter {
    /// Starts the writer. Await the returned handle after dropping every `InboxWriter` to be
    /// sure the last inserts finished.
    pub fn start(
        pool: PgPool,
        settings: IntakeSettings,
        notifier: Option<InboxNotifier>,
    ) -> (Self, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(settings.queue.max(1));
        let task = tokio::spawn(collect(receiver, pool, settings, notifier));
        (Self { sender }, task)
    }

    /// Stores `webhook`; returns once it is committed.
    pub async fn store(&self, webhook: NewWebhook) -> Result<IntakeOutcome, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { webhook, reply })
            .await
            .map_err(|_| InboxError::IntakeClosed)?;
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(error)) => Err(InboxError::Storage(error.to_string())),
            Err(_) => Err(InboxError::IntakeClosed),
        }
    }
}

/// `writers` tasks share the queue: the one holding it waits for the next webhook, takes
/// whatever else is queued, releases the queue and inserts. Each keeps its own connection:
/// sqlx pings a pooled connection every time it goes back to the pool, a round trip per
/// batch the intake does not need to pay.
async fn collect(
    receiver: mpsc::Receiver<Pending>,
    pool: PgPool,
    settings: IntakeSettings,
    notifier: Option<InboxNotifier>,
) {
    let receiver = Arc::new(Mutex::new(receiver));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..settings.writers.max(1) {
        writers.spawn(writer(
            receiver.clone(),
            pool.clone(),
            settings.clone(),
            notifier.clone(),
        ));
    }
    while writers.join_next().await.is_some() {}
}

async fn writer(
    receiver: Arc<Mutex<mpsc::Receiver<Pending>>>,
    pool: PgPool,
    settings: IntakeSettings,
    notifier: Option<InboxNotifier>,
) {
    let mut conn: Option<PoolConnection<Postgres>> = None;
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                break;
            };
            let mut bytes = first.webhook.body.len();
            let mut batch = vec![first];
            while batch.len() < settings.batch_rows && bytes < settings.batch_bytes {
                match receiver.try_recv() {
                    Ok(pending) => {
                        bytes += pending.webhook.body.len();
                        batch.push(pending);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        let connection = match conn.take() {
            Some(connection) => Ok(connection),
            None => pool.acquire().await,
        };
        match connection {
            Ok(mut connection) => {
                if write(&mut connection, batch, notifier.as_ref()).await {
                    conn = Some(connection);
                }
                // else: dropped; a broken connection is not reused.
            }
            Err(error) => fail(batch, error),
        }
    }
}

/// Inserts and answers a batch; false when the connection failed.
async fn write(
    conn: &mut PgConnection,
    batch: Vec<Pending>,
    notifier: Option<&InboxNotifier>,
) -> bool {
    let started = Instant::now();
    // A duplicate within the batch is answered like the first of its key.
    let mut seen = HashSet::new();
    let unique: Vec<&NewWebhook> = batch
        .iter()
        .map(|p| &p.webhook)
        .filter(|w| w.dedupe_key.as_ref().is_none_or(|k| seen.insert(k.clone())))
        .collect();
    let result = repo::insert_batch(conn, &unique).await;
    metrics::histogram!("webhook_intake_batch_rows").record(batch.len() as f64);
    metrics::histogram!("webhook_intake_insert_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(new_keys) => {
            let inserted = new_keys.len() as u64;
            let mut new_keys: HashSet<String> = new_keys.into_iter().flatten().collect();
            metrics::counter!("webhook_intake_stored_total").increment(inserted);
            metrics::counter!("webhook_intake_duplicates_total")
                .increment(batch.len() as u64 - inserted);
            for pending in batch {
                // The first holder of a new key stored it; any other holder is a duplicate.
                let outcome = match &pending.webhook.dedupe_key {
                    None => IntakeOutcome::Stored,
                    Some(key) if new_keys.remove(key) => IntakeOutcome::Stored,
                    Some(_) => IntakeOutcome::Duplicate,
                };
                let _ = pending.reply.send(Ok(outcome));
            }
            if inserted > 0 {
                if let Some(notifier) = notifier {
                    notifier.notify_new().await;
                }
            }
            true
        }
        Err(error) => {
            fail(batch, error);
            false
        }
    }
}

/// Answers every webhook of a batch that could not be stored.
fn fail(batch: Vec<Pending>, error: sqlx::Error) {
    tracing::error!(%error, rows = batch.len(), "storing webhooks failed");
    metrics::counter!("webhook_intake_failures_total").increment(batch.len() as u64);
    let error = Arc::new(error);
    for pending in batch {
        let _ = pending.reply.send(Err(error.clone()));
    }
}
