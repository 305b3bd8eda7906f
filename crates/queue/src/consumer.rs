//! One consumer in a consumer group: fetch, ack, retry, dead-letter, re-claim.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::{self, Value};

use crate::error::QueueError;
use crate::message::{Delivery, IncomingMessage};
use crate::queue::Queue;
use crate::retry::backoff_delay;
use crate::scripts;
use crate::wire::{self, RawEntry};

/// What `retry` did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Back on the stream after `delay`, with `attempt` + 1.
    Scheduled {
        /// The delay drawn.
        delay: Duration,
    },
    /// Out of attempts: moved to the dead-letter stream.
    DeadLettered,
    /// It was no longer pending (another consumer re-claimed and finished it); nothing done.
    NotPending,
}

/// Consumer `name` of group `group` on a queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Consumer {
    queue: Queue,
    group: Arc<str>,
    name: Arc<str>,
}

impl Consumer {
    pub(crate) fn new(queue: Queue, group: &str, name: &str) -> Self {
        Self {
            queue,
            group: group.into(),
            name: name.into(),
        }
    }

    /// The queue it reads.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Its group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Its name within the group.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Up to `count` new entries (`XREADGROUP >`), waiting up to `block` for the first one
    /// (`Duration::ZERO` returns at once). Malformed entries are dead-lettered, not returned.
    pub async fn fetch(&self, count: usize, block: Duration) -> Result<Vec<Delivery>, QueueError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&*self.group)
            .arg(&*self.name)
            .arg("COUNT")
            .arg(count.max(1));
        // BLOCK 0 would mean "forever", so zero means no BLOCK at all.
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX);
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&self.queue.keys().stream).arg(">");

        let reply = match self.query(&cmd).await {
            // A Redis restarted without persistence forgets the group: make it again and go on.
            Err(e) if e.redis_code() == Some("NOGROUP") => {
                tracing::warn!(
                    queue.stream = self.queue.name(),
                    "consumer group missing; re-creating it"
                );
                self.queue.ensure_group(&self.group).await?;
                self.query(&cmd).await?
            }
            other => other?,
        };
        Ok(self.to_deliveries(wire::parse_read_reply(reply)?).await)
    }

    pub(crate) async fn query(&self, cmd: &redis::Cmd) -> Result<Value, QueueError> {
        let mut conn = self.queue.conn().await?;
        Ok(cmd.query_async(&mut conn).await?)
    }

    /// Done with it: `XACK` + `XDEL` in one round trip, so the stream's length is the work left.
    pub async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let stream = &self.queue.keys().stream;
        let mut conn = self.queue.conn().await?;
        redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(stream)
            .arg(&*self.group)
            .arg(&delivery.entry_id)
            .ignore()
            .cmd("XDEL")
            .arg(stream)
            .arg(&delivery.entry_id)
            .ignore()
            .exec_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Failed, may succeed later: re-queued after an exponential, jittered delay, or
    /// dead-lettered when this was attempt `max_attempts`.
    pub async fn retry(
        &self,
        delivery: &Delivery,
        error: &str,
    ) -> Result<RetryOutcome, QueueError> {
        let cfg = self.queue.config();
        // Drawn before any await: the thread-local generator is not `Send`.
        let delay = backoff_delay(
            delivery.message.attempt,
            cfg.backoff_base,
            cfg.backoff_max,
            &mut rand::thread_rng(),
        );
        self.retry_after(delivery, error, delay).await
    }

    /// As `retry`, with a delay the caller chose (e.g. a `Retry-After` from Meta).
    pub async fn retry_after(
        &self,
        delivery: &Delivery,
        error: &str,
        delay: Duration,
    ) -> Result<RetryOutcome, QueueError> {
        let message = &delivery.message;
        if message.attempt >= self.queue.config().max_attempts {
            let error = format!("gave up after {} attempts: {error}", message.attempt);
            return Ok(
                match self
                    .dead_letter_reason(delivery, &error, "exhausted")
                    .await?
                {
                    true => RetryOutcome::DeadLettered,
                    false => RetryOutcome::NotPending,
                },
            );
        }
        let member = delayed_member(message, error).map_err(|source| QueueError::Payload {
            kind: message.kind.clone(),
            source,
        })?;
        let keys = self.queue.keys();
        let mut conn = self.queue.conn().await?;
        let scheduled: bool = scripts::RETRY
            .key(&keys.stream)
            .key(&keys.delayed)
            .arg(&*self.group)
            .arg(&delivery.entry_id)
            .arg(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
            .arg(member)
            .invoke_async(&mut conn)
            .await?;
        if !scheduled {
            return Ok(RetryOutcome::NotPending);
        }
        metrics::counter!("queue_retried_total", "stream" => self.queue.name().to_owned())
            .increment(1);
        Ok(RetryOutcome::Scheduled { delay })
    }

    /// Will never succeed: straight to the dead-letter stream with `error`. Returns false if it
    /// was no longer pending (someone else finished it).
    pub async fn dead_letter(&self, delivery: &Delivery, error: &str) -> Result<bool, QueueError> {
        self.dead_letter_reason(delivery, error, "permanent").await
    }

    async fn dead_letter_reason(
        &self,
        delivery: &Delivery,
        error: &str,
        reason: &'static str,
    ) -> Result<bool, QueueError> {
        let fields = wire::message_fields(&delivery.message);
        let pairs = fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()));
        self.dead_letter_raw(&delivery.entry_id, pairs, error, reason)
            .await
    }

    /// Moves entry `entry_id` with `fields` to the dead-letter stream, plus the error, the
    /// original entry id and the group (`failed_at` is added by the script).
    pub(crate) async fn dead_letter_raw<'a>(
        &self,
        entry_id: &str,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        error: &str,
        reason: &'static str,
    ) -> Result<bool, QueueError> {
        let keys = self.queue.keys();
        let mut script = scripts::DEAD_LETTER.key(&keys.stream);
        script.key(&keys.dead).arg(&*self.group).arg(entry_id);
        for (k, v) in fields {
            script.arg(k).arg(v);
        }
        script
            .arg(wire::ERROR)
            .arg(error)
            .arg(wire::ORIGINAL_ENTRY_ID)
            .arg(entry_id)
            .arg(wire::GROUP)
            .arg(&*self.group);
        let mut conn = self.queue.conn().await?;
        let moved: bool = script.invoke_async(&mut conn).await?;
        if moved {
            metrics::counter!("queue_dead_lettered_total", "stream" => self.queue.name().to_owned(), "reason" => reason)
                .increment(1);
        }
        Ok(moved)
    }

    /// Turns raw entries into deliveries. Entries deleted while pending are acknowledged and
    /// malformed ones dead-lettered; a Redis error there is logged and the entry left pending
    /// (a later re-claim tries again) so the good entries of the batch are not lost.
    pub(crate) async fn to_deliveries(&self, entries: Vec<RawEntry>) -> Vec<Delivery> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(fields) = entry.fields else {
                if let Err(e) = self.ack_id(&entry.id).await {
                    tracing::warn!(error = %e, entry.id = %entry.id, "could not acknowledge a deleted entry");
                }
                continue;
            };
            match IncomingMessage::from_fields(&entry.id, &fields) {
                Ok(message) => out.push(Delivery {
                    entry_id: entry.id,
                    message,
                }),
                Err(reason) => {
                    tracing::error!(queue.stream = self.queue.name(), entry.id = %entry.id, %reason, "malformed entry dead-lettered");
                    let pairs = fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
                    let error = format!("malformed entry: {reason}");
                    if let Err(e) = self
                        .dead_letter_raw(&entry.id, pairs, &error, "malformed")
                        .await
                    {
                        tracing::warn!(error = %e, entry.id = %entry.id, "could not dead-letter a malformed entry");
                    }
                }
            }
        }
        out
    }

    async fn ack_id(&self, entry_id: &str) -> Result<(), QueueError> {
        let mut conn = self.queue.conn().await?;
        redis::cmd("XACK")
            .arg(&self.queue.keys().stream)
            .arg(&*self.group)
            .arg(entry_id)
            .exec_async(&mut conn)
            .await?;
        Ok(())
    }
}

/// The delayed-set member for a retry: JSON the promote script reads with `cjson`. Numbers are
/// strings so Lua's doubles never reformat them.
fn delayed_member(m: &IncomingMessage, error: &str) -> Result<String, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Member<'a> {
        id: &'a str,
        kind: &'a str,
        payload: &'a str,
        attempt: String,
        enqueued_at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        correlation_id: Option<&'a str>,
        // For whoever inspects the set; the script does not copy it back to the stream.
        error: &'a str,
    }
    serde_json::to_string(&Member {
        id: &m.id,
        kind: &m.kind,
        payload: &m.payload,
        attempt: m.attempt.to_string(),
        enqueued_at: m.enqueued_at_ms.to_string(),
        correlation_id: m.correlation_id.as_deref(),
        error,
    })
}
