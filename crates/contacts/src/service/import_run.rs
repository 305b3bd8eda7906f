//! Runs stored CSV imports in the worker-pool: chunk by chunk, one transaction per chunk,
//! resumable after a crash.
//!
//! A job is run under a lease in `import_jobs` (owner + expiry, renewed with every chunk),
//! not under the queue's visibility timeout: an import of a million rows outlives any
//! sensible job timeout. The queued [`RunImport`](super::imports::RunImport) only wakes a
//! runner up; a poll picks up jobs whose wake-up was lost or whose worker died (its lease
//! expired). A chunk's contacts, its record and the job's counters commit together, so a
//! resumed job starts after its last completed chunk: no row is imported twice or lost.
//!
//! Parsing and normalising run on a blocking thread, one chunk ahead of the database
//! writes, so the two overlap.

use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kloyst_config::{ConfigError, Env};
use kloyst_core::{UserId, VendorId};
use kloyst_db::{begin_tenant, PgPool};
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::imports::{write_rows, SortedRows, UPLOAD_PART_BYTES};
use super::set_change_context;
use crate::attributes;
use crate::csv_source::{CsvItem, CsvLayout, CsvRows};
use crate::error::ContactsError;
use crate::model::Rejection;
use crate::phone::{self, Region};
use crate::repo::imports::{self as repo, ChunkRecord, Counts, JobRow};

/// `IMPORT_CONCURRENCY`, `IMPORT_LEASE`, `IMPORT_POLL_INTERVAL`.
#[derive(Clone, Debug)]
pub struct ImportRunnerSettings {
    /// `IMPORT_CONCURRENCY` (2): imports one worker runs at once.
    pub concurrency: usize,
    /// `IMPORT_LEASE` (60s): how long a silent worker keeps a job before another resumes it.
    pub lease: Duration,
    /// `IMPORT_POLL_INTERVAL` (5s): how often to look for jobs nobody is running.
    pub poll_interval: Duration,
}

impl ImportRunnerSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            concurrency: env.parse_or("IMPORT_CONCURRENCY", 2)?,
            lease: env.duration_or("IMPORT_LEASE", Duration::from_secs(60))?,
            poll_interval: env.duration_or("IMPORT_POLL_INTERVAL", Duration::from_secs(5))?,
        };
        if settings.concurrency == 0 {
            return Err(ConfigError::Invalid {
                var: "IMPORT_CONCURRENCY",
                reason: "must be at least 1".to_owned(),
            });
        }
        if settings.lease < Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                var: "IMPORT_LEASE",
                reason: "must be at least 1s".to_owned(),
            });
        }
        Ok(settings)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Completed,
    /// The file itself is unusable past some point; earlier chunks stay imported.
    Failed {
        code: String,
    },
    /// Final already, leased by another live worker, or its upload is not complete.
    NotRunnable,
    /// Stopped between two chunks (shutdown); the lease is released for another worker.
    Interrupted,
}

/// Runs import jobs for one worker process. Cheap to clone.
#[derive(Clone)]
pub struct ImportRunner {
    inner: Arc<RunnerInner>,
}

struct RunnerInner {
    pg: PgPool,
    owner: String,
    settings: ImportRunnerSettings,
    /// Jobs running in this process: a duplicate wake-up must not start a second run
    /// (the lease cannot tell two runs of one owner apart).
    running: Mutex<HashSet<Uuid>>,
    wake: mpsc::UnboundedSender<Uuid>,
    woken: Mutex<Option<mpsc::UnboundedReceiver<Uuid>>>,
}

impl ImportRunner {
    /// `owner` names this worker in job leases (e.g. host and pid).
    pub fn new(pg: PgPool, owner: impl Into<String>, settings: ImportRunnerSettings) -> Self {
        let (wake, woken) = mpsc::unbounded_channel();
        Self {
            inner: Arc::new(RunnerInner {
                pg,
                owner: owner.into(),
                settings,
                running: Mutex::new(HashSet::new()),
                wake,
                woken: Mutex::new(Some(woken)),
            }),
        }
    }

    /// Asks [`Self::supervise`] to run `job` (a queued wake-up).
    pub fn wake(&self, job: Uuid) {
        // Fails only once `supervise` has stopped: the poll of the next process takes over.
        let _ = self.inner.wake.send(job);
    }

    /// Runs woken jobs and, every poll interval, jobs nobody is running, at most
    /// `concurrency` at once, until `stop`; then waits for the running ones to stop at
    /// their next chunk boundary.
    pub async fn supervise(&self, stop: CancellationToken) {
        let woken = self.inner.woken.lock().ok().and_then(|mut w| w.take());
        let Some(mut woken) = woken else {
            tracing::error!("ImportRunner::supervise called twice");
            return;
        };
        let slots = Arc::new(Semaphore::new(self.inner.settings.concurrency));
        let tasks = TaskTracker::new();
        let mut poll = tokio::time::interval(self.inner.settings.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let jobs = tokio::select! {
                () = stop.cancelled() => break,
                Some(job) = woken.recv() => vec![job],
                _ = poll.tick() => {
                    // A queued job gets a few seconds for its own wake-up first.
                    let queued_for = self.inner.settings.poll_interval * 2;
                    match repo::runnable_jobs(&self.inner.pg, queued_for, 16).await {
                        Ok(jobs) => jobs,
                        Err(error) => {
                            tracing::warn!(%error, "could not look for runnable imports");
                            Vec::new()
                        }
                    }
                }
            };
            for job in jobs {
                if !self.mark_running(job) {
                    continue;
                }
                let runner = self.clone();
                let slots = slots.clone();
                let stop = stop.clone();
                tasks.spawn(async move {
                    if let Ok(_slot) = slots.acquire_owned().await {
                        match runner.run(job, &stop).await {
                            Ok(outcome) => tracing::info!(%job, ?outcome, "import run ended"),
                            Err(error) => tracing::error!(%job, %error, "import run failed; it resumes when its lease expires"),
                        }
                    }
                    runner.unmark_running(job);
                });
            }
        }
        tasks.close();
        tasks.wait().await;
    }

    fn mark_running(&self, job: Uuid) -> bool {
        self.inner
            .running
            .lock()
            .map(|mut running| running.insert(job))
            .unwrap_or(false)
    }

    fn unmark_running(&self, job: Uuid) {
        if let Ok(mut running) = self.inner.running.lock() {
            running.remove(&job);
        }
    }

    /// Runs (or resumes) one job to its end, or until `stop` between two chunks.
    pub async fn run(
        &self,
        job: Uuid,
        stop: &CancellationToken,
    ) -> Result<RunOutcome, ContactsError> {
        let pg = &self.inner.pg;
        let lease = self.inner.settings.lease;
        let Some(row) = repo::take_lease(pg, job, &self.inner.owner, lease).await? else {
            return Ok(RunOutcome::NotRunnable);
        };
        let vendor = VendorId::from_uuid(row.vendor_id);
        let fail = |code: &str, message: &str| (code.to_owned(), message.to_owned());
        let Some(region) = phone::parse_region(&row.default_country) else {
            return self
                .finish(
                    vendor,
                    job,
                    Some(fail(
                        "bad_country",
                        "the job's default country is not a region",
                    )),
                )
                .await;
        };
        let layout: CsvLayout = match row
            .csv_layout
            .as_ref()
            .map(|l| serde_json::from_value(l.0.clone()))
        {
            Some(Ok(layout)) => layout,
            _ => {
                return self
                    .finish(
                        vendor,
                        job,
                        Some(fail("bad_layout", "the upload's layout is missing")),
                    )
                    .await
            }
        };

        // Where to start: after the last completed chunk.
        let mut tx = begin_tenant(pg, vendor).await?;
        let last = repo::last_chunk(&mut tx, vendor, job).await?;
        let mut seen = HashSet::new();
        if last.is_some() {
            for mobile in repo::mobiles_written_by(&mut tx, vendor, job).await? {
                if let Ok(n) = mobile.parse::<u64>() {
                    seen.insert(n);
                }
            }
        }
        tx.commit().await?;
        let (mut seq, next_row, offset) = match last {
            Some((seq, row_end, byte_end)) => (
                seq,
                u64::try_from(row_end).unwrap_or(0) + 1,
                byte_end
                    .and_then(|b| u64::try_from(b).ok())
                    .unwrap_or(layout.data_start),
            ),
            None => (0, 1, layout.data_start),
        };
        if last.is_some() {
            tracing::info!(%job, seq, offset, "resuming import");
        }

        let chunk_rows = usize::try_from(row.chunk_size).unwrap_or(5_000).max(1);
        let (batches, mut incoming) = mpsc::channel(2);
        let reader = UploadReader::new(Handle::current(), pg.clone(), vendor, job, offset);
        let parser = tokio::task::spawn_blocking(move || {
            parse_batches(
                reader, layout, offset, next_row, region, chunk_rows, &batches,
            );
        });

        let mut outcome = RunOutcome::Completed;
        let mut failure = None;
        while let Some(batch) = incoming.recv().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(Fatal { code, message }) => {
                    failure = Some((code, message));
                    break;
                }
            };
            seq += 1;
            self.write_chunk(&row, vendor, seq, batch, &mut seen)
                .await?;
            if stop.is_cancelled() {
                outcome = RunOutcome::Interrupted;
                break;
            }
        }
        drop(incoming);
        parser.await?;
        match outcome {
            RunOutcome::Interrupted => {
                repo::release_lease(pg, job, &self.inner.owner).await?;
                Ok(RunOutcome::Interrupted)
            }
            _ => self.finish(vendor, job, failure).await,
        }
    }

    async fn finish(
        &self,
        vendor: VendorId,
        job: Uuid,
        failure: Option<(String, String)>,
    ) -> Result<RunOutcome, ContactsError> {
        let mut tx = begin_tenant(&self.inner.pg, vendor).await?;
        let failed = failure.as_ref().map(|(c, m)| (c.as_str(), m.as_str()));
        repo::finish_job(&mut tx, vendor, job, failed).await?;
        // The file was only kept to be imported; contact data must not linger in it.
        repo::delete_uploads(&mut tx, vendor, job).await?;
        tx.commit().await?;
        Ok(match failure {
            None => RunOutcome::Completed,
            Some((code, _)) => RunOutcome::Failed { code },
        })
    }

    /// One chunk in one transaction: its contacts, list memberships, audit rows (by the
    /// triggers, tagged with the job), its record and the job's counters and lease.
    async fn write_chunk(
        &self,
        job: &JobRow,
        vendor: VendorId,
        seq: i32,
        batch: Batch,
        seen: &mut HashSet<u64>,
    ) -> Result<(), ContactsError> {
        let mut sorted = SortedRows::default();
        let seen_rows = batch.rows.len() + batch.rejected.len();
        for row in batch.rows {
            sorted.take(row.row, row.mobile, row.country, row.attributes);
        }
        let mut counts = Counts {
            seen: seen_rows as i64,
            rejected: batch.rejected.len() as i64,
            duplicate: sorted.duplicates.len() as i64,
            ..Counts::default()
        };
        let mut tx = begin_tenant(&self.inner.pg, vendor).await?;
        set_change_context(
            &mut tx,
            job.created_by.map(UserId::from_uuid),
            None,
            Some(job.id),
        )
        .await?;
        let written = write_rows(&mut tx, vendor, &sorted.unique, job.list_id).await?;
        let mut new_numbers = Vec::with_capacity(sorted.unique.len());
        for unique in &sorted.unique {
            let number = unique.upsert.mobile.parse::<u64>().unwrap_or(0);
            if seen.contains(&number) {
                // Met in an earlier chunk of this file: merged into it, counted once.
                counts.duplicate += 1;
                continue;
            }
            new_numbers.push(number);
            match written.get(&unique.upsert.mobile) {
                Some((_, true)) => counts.created += 1,
                Some((_, false)) => counts.updated += 1,
                None => counts.unchanged += 1,
            }
        }
        let rejected_rows = serde_json::to_value(&batch.rejected)
            .map_err(|e| ContactsError::corrupt(e.to_string()))?;
        repo::record_chunk(
            &mut tx,
            &ChunkRecord {
                vendor,
                job: job.id,
                seq,
                row_start: i64::try_from(batch.row_start).unwrap_or(i64::MAX),
                row_end: i64::try_from(batch.row_end).unwrap_or(i64::MAX),
                byte_start: i64::try_from(batch.byte_start).ok(),
                byte_end: i64::try_from(batch.byte_end).ok(),
                counts,
                rejected_rows: &rejected_rows,
            },
            self.inner.settings.lease,
        )
        .await?;
        tx.commit().await?;
        seen.extend(new_numbers);
        Ok(())
    }
}

/// A row that parsed and normalised.
struct ParsedRow {
    row: u64,
    mobile: String,
    country: Option<String>,
    attributes: serde_json::Map<String, Value>,
}

/// Up to `chunk_rows` consecutive rows of the file.
struct Batch {
    rows: Vec<ParsedRow>,
    rejected: Vec<Rejection>,
    row_start: u64,
    row_end: u64,
    byte_start: u64,
    byte_end: u64,
}

impl Batch {
    fn new(row_start: u64, byte_start: u64) -> Self {
        Self {
            rows: Vec::new(),
            rejected: Vec::new(),
            row_start,
            row_end: row_start.saturating_sub(1),
            byte_start,
            byte_end: byte_start,
        }
    }

    fn len(&self) -> usize {
        self.rows.len() + self.rejected.len()
    }
}

/// The file cannot be read further.
struct Fatal {
    code: String,
    message: String,
}

/// The parser thread: rows → normalised batches, one chunk ahead of the writer.
fn parse_batches<R: Read>(
    reader: R,
    layout: CsvLayout,
    offset: u64,
    next_row: u64,
    region: Region,
    chunk_rows: usize,
    out: &mpsc::Sender<Result<Batch, Fatal>>,
) {
    let mut rows = CsvRows::resume(reader, layout, offset, next_row);
    let mut batch = Batch::new(next_row, offset);
    while let Some(item) = rows.next_item() {
        match item {
            Err(error) => {
                let fatal = Fatal {
                    code: error.code().to_owned(),
                    message: error.to_string(),
                };
                // Rows before the fault are imported; the job then fails with the reason.
                if batch.len() > 0 && out.blocking_send(Ok(batch)).is_err() {
                    return;
                }
                let _ = out.blocking_send(Err(fatal));
                return;
            }
            Ok(CsvItem::Rejected(rejection)) => {
                batch.row_end = rejection.number;
                batch.byte_end = rejection.end_offset;
                batch.rejected.push(Rejection {
                    row: rejection.number,
                    raw: rejection.raw,
                    reason: rejection.reason.to_owned(),
                    message: rejection.message,
                    field: None,
                });
            }
            Ok(CsvItem::Row(row)) => {
                batch.row_end = row.number;
                batch.byte_end = row.end_offset;
                if let Err(problem) = attributes::check(&row.attributes, false) {
                    batch.rejected.push(Rejection {
                        row: row.number,
                        raw: row.mobile,
                        reason: problem.code.to_owned(),
                        message: problem.message,
                        field: problem.key,
                    });
                } else {
                    match phone::normalize(&row.mobile, region) {
                        Ok(number) => batch.rows.push(ParsedRow {
                            row: row.number,
                            mobile: number.mobile,
                            country: number.country,
                            attributes: row.attributes,
                        }),
                        Err(reason) => batch.rejected.push(Rejection {
                            row: row.number,
                            raw: row.mobile,
                            reason: reason.code().to_owned(),
                            message: reason.message().to_owned(),
                            field: Some("mobile".to_owned()),
                        }),
                    }
                }
            }
        }
        if batch.len() >= chunk_rows {
            let next = Batch::new(batch.row_end + 1, batch.byte_end);
            if out
                .blocking_send(Ok(std::mem::replace(&mut batch, next)))
                .is_err()
            {
                return;
            }
        }
    }
    if batch.len() > 0 {
        let _ = out.blocking_send(Ok(batch));
    }
}

/// The stored upload as a byte stream from `offset`, fetched part by part (blocking: it
/// runs on the parser thread).
struct UploadReader {
    handle: Handle,
    pg: PgPool,
    vendor: VendorId,
    job: Uuid,
    part: i32,
    buffer: Vec<u8>,
    position: usize,
    done: bool,
}

impl UploadReader {
    fn new(handle: Handle, pg: PgPool, vendor: VendorId, job: Uuid, offset: u64) -> Self {
        let part_bytes = UPLOAD_PART_BYTES as u64;
        Self {
            handle,
            pg,
            vendor,
            job,
            part: i32::try_from(offset / part_bytes).unwrap_or(i32::MAX),
            buffer: Vec::new(),
            // Skipped once the first part is fetched.
            position: usize::try_from(offset % part_bytes).unwrap_or(0),
            done: false,
        }
    }
}

impl Read for UploadReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while !self.done && self.position >= self.buffer.len() {
            let skip = if self.buffer.is_empty() {
                self.position
            } else {
                0
            };
            let fetched = self.handle.block_on(repo::read_upload_part(
                &self.pg,
                self.vendor,
                self.job,
                self.part,
            ));
            match fetched.map_err(std::io::Error::other)? {
                Some(data) => {
                    self.buffer = data;
                    self.position = skip;
                    self.part += 1;
                }
                None => self.done = true,
            }
        }
        let available = self.buffer.get(self.position..).unwrap_or_default();
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.position += n;
        Ok(n)
    }
}
