//! Posting Razorpay webhooks: the body serialised once, `X-Razorpay-Signature` = hex
//! HMAC-SHA256 of those bytes with the webhook secret, `x-razorpay-event-id` per event, and
//! the same bytes re-posted with backoff until a 2xx (Razorpay retries for 24 hours).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ids;
use crate::settings::{RazorpaySimSettings, SharedBehaviour};
use crate::sync::lock;

pub const SIGNATURE_HEADER: &str = "x-razorpay-signature";
pub const EVENT_ID_HEADER: &str = "x-razorpay-event-id";
/// Razorpay counts an answer later than 5 s as a failure.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Razorpay stops retrying an event 24 hours after creating it.
const RETRY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
const RECORD_CAP: usize = 100_000;

/// Lowercase hex HMAC-SHA256: webhook signatures and Checkout's `razorpay_signature`.
pub fn hmac_hex(secret: &[u8], data: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC accepts keys of any length; this arm is never taken.
        return String::new();
    };
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// One event ready to post: its bytes never change between attempts.
#[derive(Clone, Debug)]
pub struct SignedEvent {
    pub event_id: String,
    /// The body's `event` (`payment.captured`, …), for the delivery log.
    pub event: Option<String>,
    pub body: Bytes,
    pub signature: String,
}

/// One POST made, as `GET /_sim/razorpay/webhooks` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookRecord {
    pub event_id: String,
    pub event: Option<String>,
    /// The HTTP status answered; `None` when no answer came.
    pub status: Option<u16>,
    /// 1 for the first POST of this copy, 2 for its first retry, …
    pub attempt: u32,
    /// Which of the `deliveries` copies of the event this POST belongs to (1-based).
    pub delivery: u32,
    /// Lowercase hex SHA-256 of the exact bytes posted.
    pub body_sha256: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
#[error("no payment webhook URL is configured (SIM_PAYMENT_WEBHOOK_URL is off)")]
pub struct NoWebhookUrl;

pub struct PaymentWebhooks {
    url: Option<String>,
    secret: Vec<u8>,
    client: reqwest::Client,
    log: Mutex<VecDeque<WebhookRecord>>,
    behaviour: SharedBehaviour,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl PaymentWebhooks {
    pub fn new(
        settings: &RazorpaySimSettings,
        behaviour: SharedBehaviour,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            url: settings.webhook_url.clone(),
            secret: settings.webhook_secret.as_bytes().to_vec(),
            client: reqwest::Client::builder().timeout(POST_TIMEOUT).build()?,
            log: Mutex::default(),
            behaviour,
            tasks,
            shutdown,
        })
    }

    /// Serialises `body` once, signs it and gives it a fresh event id.
    pub fn sign(&self, body: &Value) -> Result<SignedEvent, serde_json::Error> {
        let bytes = Bytes::from(serde_json::to_vec(body)?);
        Ok(self.signed_bytes(bytes, None, None))
    }

    /// `bytes` as given, signed with the webhook secret unless `signature` overrides it.
    pub fn signed_bytes(
        &self,
        bytes: Bytes,
        signature: Option<String>,
        event_id: Option<String>,
    ) -> SignedEvent {
        let event = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("event").and_then(Value::as_str).map(str::to_owned));
        SignedEvent {
            event_id: event_id.unwrap_or_else(|| ids::razorpay("evt")),
            event,
            signature: signature.unwrap_or_else(|| hmac_hex(&self.secret, &bytes)),
            body: bytes,
        }
    }

    /// In the background, posts each event `copies` times, in order, each copy until a 2xx.
    /// Does nothing when no URL is configured.
    pub fn deliver_in_order(self: &Arc<Self>, events: Vec<SignedEvent>, copies: u32) {
        let Some(url) = self.url.clone() else {
            return;
        };
        let this = Arc::clone(self);
        self.tasks.spawn(async move {
            for event in &events {
                for copy in 1..=copies {
                    if !this.deliver_until_acked(&url, event, copy).await {
                        return;
                    }
                }
            }
        });
    }

    /// One POST, no retry; the HTTP status answered (`None`: no answer).
    pub async fn post_once(&self, event: &SignedEvent) -> Result<Option<u16>, NoWebhookUrl> {
        let url = self.url.as_deref().ok_or(NoWebhookUrl)?;
        Ok(self.attempt(url, event, 1, 1).await)
    }

    /// False when it gave up (shutdown, or Razorpay's 24 h window passed).
    async fn deliver_until_acked(&self, url: &str, event: &SignedEvent, copy: u32) -> bool {
        let started = tokio::time::Instant::now();
        let mut attempt: u32 = 1;
        loop {
            let status = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return false,
                status = self.attempt(url, event, attempt, copy) => status,
            };
            if status.is_some_and(|s| (200..300).contains(&s)) {
                return true;
            }
            if started.elapsed() >= RETRY_WINDOW {
                tracing::warn!(event.id = %event.event_id, "payment webhook never acknowledged; giving up");
                return false;
            }
            tracing::debug!(event.id = %event.event_id, http.status = ?status, "payment webhook not acknowledged; will retry");
            let wait = self.backoff(attempt - 1);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        event: &SignedEvent,
        attempt: u32,
        copy: u32,
    ) -> Option<u16> {
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &event.signature)
            .header(EVENT_ID_HEADER, &event.event_id)
            .body(event.body.clone())
            .send()
            .await;
        let status = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                // Reading the body lets the connection be reused.
                let _ = response.bytes().await;
                Some(status)
            }
            Err(error) => {
                tracing::debug!(%error, "payment webhook POST failed");
                None
            }
        };
        let mut log = lock(&self.log);
        if log.len() >= RECORD_CAP {
            log.pop_front();
        }
        log.push_back(WebhookRecord {
            event_id: event.event_id.clone(),
            event: event.event.clone(),
            status,
            attempt,
            delivery: copy,
            body_sha256: hex::encode(Sha256::digest(&event.body)),
            at: Utc::now(),
        });
        status
    }

    /// The same schedule as Meta's webhooks: base × 2ⁿ, capped (`webhook_retry_*_ms`).
    fn backoff(&self, failures: u32) -> Duration {
        let behaviour = self.behaviour.get();
        let factor = 2u64.saturating_pow(failures.min(32));
        let ms = behaviour
            .webhook_retry_base_ms
            .saturating_mul(factor)
            .min(behaviour.webhook_retry_max_ms);
        Duration::from_millis(ms)
    }

    /// The newest `limit` POSTs, oldest first.
    pub fn records(&self, limit: usize) -> Vec<WebhookRecord> {
        let log = lock(&self.log);
        let skip = log.len().saturating_sub(limit);
        log.iter().skip(skip).cloned().collect()
    }

    /// POSTs made and how many were answered with a 2xx.
    pub fn counts(&self) -> (usize, usize) {
        let log = lock(&self.log);
        let acked = log
            .iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .count();
        (log.len(), acked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
