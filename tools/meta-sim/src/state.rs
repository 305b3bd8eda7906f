//! Everything the simulator remembers, in memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::limits::{PairLimit, Throughput};
use crate::razorpay::RazorpaySim;
use crate::settings::SharedBehaviour;
use crate::sync::lock;
use crate::templates::TemplateStore;
use crate::webhooks::batcher::StatusSender;
use crate::webhooks::delivery::{Deliverer, DeliveryKind};
use crate::webhooks::payload::Origin;

pub struct SimState {
    pub access_token: String,
    pub origin: Origin,
    pub behaviour: SharedBehaviour,
    pub templates: Mutex<TemplateStore>,
    pub sends: Mutex<SendLog>,
    pub throughput: Mutex<Throughput>,
    pub pairs: Mutex<PairLimit>,
    pub stats: Stats,
    pub deliverer: Arc<Deliverer>,
    pub statuses: StatusSender,
    pub razorpay: RazorpaySim,
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

impl SimState {
    /// Posts a one-off webhook (template status, inbound) outside the status batcher.
    pub fn post_webhook(&self, kind: DeliveryKind, items: usize, body: &Value) -> Option<u64> {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.deliverer.post(kind, items, Bytes::from(bytes)),
            Err(error) => {
                tracing::error!(%error, "could not serialise a webhook");
                None
            }
        }
    }
}

/// An accepted send, as `GET /_sim/messages` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct SendRecord {
    pub wamid: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub at: DateTime<Utc>,
}

/// The newest accepted sends, oldest dropped beyond the cap.
#[derive(Debug, Default)]
pub struct SendLog {
    records: VecDeque<SendRecord>,
}

const SEND_LOG_CAP: usize = 1_000_000;

impl SendLog {
    pub fn push(&mut self, record: SendRecord) {
        if self.records.len() >= SEND_LOG_CAP {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// The newest `limit`, oldest first.
    pub fn latest(&self, limit: usize) -> Vec<SendRecord> {
        let skip = self.records.len().saturating_sub(limit);
        self.records.iter().skip(skip).cloned().collect()
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub sends_accepted: AtomicU64,
    pub templates_created: AtomicU64,
    pub inbound_posted: AtomicU64,
    rejected_by_code: Mutex<BTreeMap<i64, u64>>,
    /// What the accepted messages were planned to end as (`/_sim/stats` `outcomes`): the
    /// record a test compares a platform's counters and charges with.
    outcomes: Outcomes,
}

/// Accepted messages by their planned end: delivery evidence (`delivered` or a `read` in its
/// place), read, failed, and delivered with billable pricing (what Meta would charge).
#[derive(Debug, Default)]
struct Outcomes {
    delivered: AtomicU64,
    read: AtomicU64,
    failed: AtomicU64,
    billable: AtomicU64,
}

impl Stats {
    pub fn accepted(&self) {
        self.sends_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Records what one accepted message's statuses will say.
    pub fn planned(&self, delivered: bool, read: bool, failed: bool, billable: bool) {
        let count = |counter: &AtomicU64, yes: bool| {
            if yes {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        count(&self.outcomes.delivered, delivered);
        count(&self.outcomes.read, read);
        count(&self.outcomes.failed, failed);
        count(&self.outcomes.billable, delivered && billable);
    }

    pub fn rejected(&self, code: i64) {
        *lock(&self.rejected_by_code).entry(code).or_default() += 1;
    }

    pub fn snapshot(&self, deliverer: &Deliverer) -> Value {
        let rejected: BTreeMap<String, u64> = lock(&self.rejected_by_code)
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect();
        let webhooks = deliverer.summary();
        json!({
            "sends_accepted": self.sends_accepted.load(Ordering::Relaxed),
            "sends_rejected": rejected.values().sum::<u64>(),
            "sends_rejected_by_code": rejected,
            "templates_created": self.templates_created.load(Ordering::Relaxed),
            "inbound_posted": self.inbound_posted.load(Ordering::Relaxed),
            "outcomes": {
                "delivered": self.outcomes.delivered.load(Ordering::Relaxed),
                "read": self.outcomes.read.load(Ordering::Relaxed),
                "failed": self.outcomes.failed.load(Ordering::Relaxed),
                "billable_delivered": self.outcomes.billable.load(Ordering::Relaxed),
            },
            "webhooks": webhooks,
        })
    }
}
