//! Posting webhooks the way Meta does: signed, concurrent, and retried with exponential
//! backoff until the receiver answers exactly 200 (the same bytes every time).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::settings::SharedBehaviour;
use crate::sync::lock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    Statuses,
    TemplateStatus,
    Inbound,
}

/// One webhook POST and its fate; the body itself lives only in the task that posts it.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRecord {
    pub id: u64,
    /// Lowercase hex SHA-256 of the exact bytes posted.
    pub body_sha256: String,
    pub kind: DeliveryKind,
    /// Statuses or messages in the body.
    pub items: usize,
    pub attempts: u32,
    pub acked: bool,
    pub last_http_status: Option<u16>,
    pub acked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DeliverySummary {
    pub posted: u64,
    pub acked: u64,
    pub pending: u64,
    pub attempts: u64,
}

/// Records kept for inspection; beyond the cap the oldest acked ones go, un-acked ones never.
#[derive(Debug)]
struct DeliveryLog {
    records: BTreeMap<u64, DeliveryRecord>,
    acked_order: VecDeque<u64>,
    next_id: u64,
    summary: DeliverySummary,
    cap: usize,
}

impl DeliveryLog {
    fn add(&mut self, kind: DeliveryKind, items: usize, body: &[u8]) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.records.insert(
            id,
            DeliveryRecord {
                id,
                body_sha256: hex::encode(Sha256::digest(body)),
                kind,
                items,
                attempts: 0,
                acked: false,
                last_http_status: None,
                acked_at: None,
            },
        );
        self.summary.posted += 1;
        self.summary.pending += 1;
        id
    }

    fn attempted(&mut self, id: u64, status: Option<u16>) {
        self.summary.attempts += 1;
        let acked = status == Some(200);
        if acked {
            self.summary.acked += 1;
            self.summary.pending = self.summary.pending.saturating_sub(1);
            self.acked_order.push_back(id);
        }
        if let Some(record) = self.records.get_mut(&id) {
            record.attempts += 1;
            record.last_http_status = status;
            if acked {
                record.acked = true;
                record.acked_at = Some(Utc::now());
            }
        }
        while self.records.len() > self.cap {
            let Some(oldest_acked) = self.acked_order.pop_front() else {
                break;
            };
            self.records.remove(&oldest_acked);
        }
    }
}

/// Which records `GET /_sim/webhooks` lists.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryFilter {
    pub limit: usize,
    pub pending_only: bool,
}

pub struct Deliverer {
    url: Option<String>,
    app_secret: Vec<u8>,
    client: reqwest::Client,
    log: Mutex<DeliveryLog>,
    permits: Arc<Semaphore>,
    concurrency: AtomicUsize,
    behaviour: SharedBehaviour,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// Meta gives no timeout figure; third parties quote 5–10 s.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
const RECORD_CAP: usize = 1_000_000;

impl Deliverer {
    pub fn new(
        url: Option<String>,
        app_secret: &str,
        behaviour: SharedBehaviour,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, reqwest::Error> {
        let concurrency = behaviour.get().webhook_concurrency;
        Ok(Self {
            url,
            app_secret: app_secret.as_bytes().to_vec(),
            client: reqwest::Client::builder().timeout(POST_TIMEOUT).build()?,
            log: Mutex::new(DeliveryLog {
                records: BTreeMap::new(),
                acked_order: VecDeque::new(),
                next_id: 0,
                summary: DeliverySummary::default(),
                cap: RECORD_CAP,
            }),
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency: AtomicUsize::new(concurrency),
            behaviour,
            tasks,
            shutdown,
        })
    }

    /// Starts posting `body`; `None` when no webhook URL is configured.
    pub fn post(self: &Arc<Self>, kind: DeliveryKind, items: usize, body: Bytes) -> Option<u64> {
        let url = self.url.clone()?;
        let id = lock(&self.log).add(kind, items, &body);
        let this = Arc::clone(self);
        self.tasks
            .spawn(async move { this.deliver_until_acked(id, url, body).await });
        Some(id)
    }

    async fn deliver_until_acked(&self, id: u64, url: String, body: Bytes) {
        let signature = kloyst_meta::signature::sign(&self.app_secret, &body);
        let mut failures: u32 = 0;
        loop {
            let status = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return,
                status = self.attempt(&url, &signature, &body) => status,
            };
            lock(&self.log).attempted(id, status);
            if status == Some(200) {
                return;
            }
            tracing::debug!(delivery.id = id, http.status = ?status, "webhook not acknowledged; will retry");
            let wait = self.backoff(failures);
            failures = failures.saturating_add(1);
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One POST while holding a concurrency permit; `None` when no HTTP answer came.
    async fn attempt(&self, url: &str, signature: &str, body: &Bytes) -> Option<u16> {
        let _permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(kloyst_meta::signature::HEADER, signature)
            .body(body.clone())
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                // Reading the body lets the connection be reused.
                let _ = response.bytes().await;
                Some(status)
            }
            Err(error) => {
                tracing::debug!(%error, "webhook POST failed");
                None
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let behaviour = self.behaviour.get();
        let factor = 2u64.saturating_pow(failures.min(32));
        let ms = behaviour
            .webhook_retry_base_ms
            .saturating_mul(factor)
            .min(behaviour.webhook_retry_max_ms);
        Duration::from_millis(ms)
    }

    /// Applies a new `webhook_concurrency`; a decrease takes effect as permits come back.
    pub fn set_concurrency(&self, wanted: usize) {
        let current = self.concurrency.swap(wanted, Ordering::SeqCst);
        if wanted > current {
            self.permits.add_permits(wanted - current);
        } else if wanted < current {
            let to_remove = current - wanted;
            let permits = Arc::clone(&self.permits);
            let shutdown = self.shutdown.clone();
            let Ok(to_remove_u32) = u32::try_from(to_remove) else {
                return;
            };
            self.tasks.spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    taken = permits.acquire_many_owned(to_remove_u32) => {
                        if let Ok(taken) = taken {
                            taken.forget();
                        }
                    }
                }
            });
        }
    }

    pub fn summary(&self) -> DeliverySummary {
        lock(&self.log).summary
    }

    /// The newest matching records, oldest first.
    pub fn records(&self, filter: DeliveryFilter) -> Vec<DeliveryRecord> {
        let log = lock(&self.log);
        let mut newest: Vec<DeliveryRecord> = log
            .records
            .values()
            .rev()
            .filter(|r| !filter.pending_only || !r.acked)
            .take(filter.limit)
            .cloned()
            .collect();
        newest.reverse();
        newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_drops_oldest_acked_and_keeps_unacked() {
        let mut log = DeliveryLog {
            records: BTreeMap::new(),
            acked_order: VecDeque::new(),
            next_id: 0,
            summary: DeliverySummary::default(),
            cap: 2,
        };
        let unacked = log.add(DeliveryKind::Statuses, 1, b"a");
        let first = log.add(DeliveryKind::Statuses, 1, b"b");
        log.attempted(first, Some(200));
        let second = log.add(DeliveryKind::Inbound, 1, b"c");
        log.attempted(unacked, Some(500));
        assert!(!log.records.contains_key(&first), "oldest acked dropped");
        assert!(log.records.contains_key(&unacked));
        assert!(log.records.contains_key(&second));
        assert_eq!(log.summary.posted, 3);
        assert_eq!(log.summary.acked, 1);
        assert_eq!(log.summary.pending, 2);
        assert_eq!(log.summary.attempts, 2);
    }
}
