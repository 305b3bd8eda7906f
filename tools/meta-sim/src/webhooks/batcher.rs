//! Gathers status updates into webhook POSTs: up to `batch_max` per POST within
//! `batch_window_ms`, optionally shuffled, optionally posted twice (Meta's duplicates).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::settings::SharedBehaviour;
use crate::webhooks::delivery::{Deliverer, DeliveryKind};
use crate::webhooks::payload::{self, Origin};

/// Where status objects go to be posted.
#[derive(Clone, Debug)]
pub struct StatusSender(mpsc::UnboundedSender<Value>);

impl StatusSender {
    pub fn send(&self, status: Value) {
        // Closed only at shutdown, when dropping the status is what we want.
        let _ = self.0.send(status);
    }
}

pub struct StatusBatcher {
    receiver: mpsc::UnboundedReceiver<Value>,
    origin: Origin,
    behaviour: SharedBehaviour,
    deliverer: Arc<Deliverer>,
}

impl StatusBatcher {
    pub fn new(
        origin: Origin,
        behaviour: SharedBehaviour,
        deliverer: Arc<Deliverer>,
    ) -> (StatusSender, Self) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let batcher = Self {
            receiver,
            origin,
            behaviour,
            deliverer,
        };
        (StatusSender(sender), batcher)
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let first = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                next = self.receiver.recv() => match next {
                    Some(status) => status,
                    None => return,
                },
            };
            let behaviour = self.behaviour.get();
            let mut batch = vec![first];
            let deadline = Instant::now() + Duration::from_millis(behaviour.batch_window_ms);
            while batch.len() < behaviour.batch_max {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep_until(deadline) => break,
                    next = self.receiver.recv() => match next {
                        Some(status) => batch.push(status),
                        None => break,
                    },
                }
            }
            if behaviour.reorder {
                batch.shuffle(&mut rand::thread_rng());
            }
            let duplicate = rand::thread_rng().gen::<f64>() < behaviour.duplicate_rate;
            self.post(batch, duplicate);
        }
    }

    fn post(&self, batch: Vec<Value>, duplicate: bool) {
        let items = batch.len();
        let body = payload::statuses_body(&self.origin, batch);
        let Ok(bytes) = serde_json::to_vec(&body) else {
            tracing::error!("could not serialise a statuses webhook");
            return;
        };
        let bytes = Bytes::from(bytes);
        let copies = if duplicate { 2 } else { 1 };
        for _ in 0..copies {
            self.deliverer
                .post(DeliveryKind::Statuses, items, bytes.clone());
        }
    }
}
