//! A named queue: publishing, delayed-retry promotion, dedupe marks and dead-letter reads.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::{self, Value};
use deadpool_redis::{Connection, Pool};

use crate::config::QueueConfig;
use crate::consumer::Consumer;
use crate::error::QueueError;
use crate::keys::{done_key, Keys};
use crate::message::{DeadLetter, OutgoingMessage};
use crate::scripts;
use crate::wire;

/// A handle to queue `name`. Cheap to clone; clones share the pool and settings.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: QueueConfig,
    name: String,
    keys: Keys,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.name)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

/// Values of a dedupe key: being applied (a lease) or applied.
const RUNNING: &str = "running";
const DONE: &str = "done";

/// What [`Queue::claim_once`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnceClaim {
    /// This caller may apply the message.
    Acquired,
    /// Already applied: acknowledge the copy.
    Done,
    /// Another handler holds the lease: leave the copy pending; it is re-claimed after the
    /// visibility timeout and then found done (or free again, if that handler failed).
    InProgress,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

impl Queue {
    /// Queue `name` on `pool`. Nothing is created in Redis until the first publish or consumer.
    pub fn new(pool: Pool, config: QueueConfig, name: impl Into<String>) -> Self {
        let name = name.into();
        let keys = Keys::new(&config.prefix, &name);
        Self {
            inner: Arc::new(Inner {
                pool,
                config,
                name,
                keys,
            }),
        }
    }

    /// The queue's name (the `stream` label of its metrics).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its settings.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// Its Redis keys.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub(crate) async fn conn(&self) -> Result<Connection, QueueError> {
        Ok(self.inner.pool.get().await?)
    }

    /// Appends one message (`XADD`) and returns its entry id.
    pub async fn publish(&self, msg: &OutgoingMessage) -> Result<String, QueueError> {
        let mut buf = Vec::with_capacity(256);
        let cmd = self.xadd(msg, now_ms(), &mut buf)?;
        let mut conn = self.conn().await?;
        let id: Value = cmd.query_async(&mut conn).await?;
        wire::into_string(id)
    }

    /// Appends all messages, in order, in ONE pipelined round trip.
    ///
    /// Not a transaction: on error some may have been added. Callers (the outbox relay) retry
    /// the batch and consumers dedupe on the message id, which is cheaper than `MULTI`.
    pub async fn publish_batch(&self, msgs: &[OutgoingMessage]) -> Result<(), QueueError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::Pipeline::with_capacity(msgs.len());
        // One JSON buffer reused for every payload; each command copies the bytes out of it.
        let mut buf = Vec::with_capacity(512);
        let now = now_ms();
        for msg in msgs {
            pipe.add_command(self.xadd(msg, now, &mut buf)?).ignore();
        }
        let mut conn = self.conn().await?;
        pipe.exec_async(&mut conn).await?;
        Ok(())
    }

    /// The `XADD` of one message, its payload serialised through `buf`.
    fn xadd(
        &self,
        msg: &OutgoingMessage,
        now: u64,
        buf: &mut Vec<u8>,
    ) -> Result<redis::Cmd, QueueError> {
        buf.clear();
        serde_json::to_writer(&mut *buf, &msg.payload).map_err(|source| QueueError::Payload {
            kind: msg.kind.clone(),
            source,
        })?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.inner.keys.stream)
            .arg("*")
            .arg(wire::ID)
            .arg(&msg.id)
            .arg(wire::KIND)
            .arg(&msg.kind)
            .arg(wire::PAYLOAD)
            .arg(buf.as_slice())
            .arg(wire::ATTEMPT)
            .arg(1u32)
            .arg(wire::ENQUEUED_AT)
            .arg(now);
        if let Some(c) = &msg.correlation_id {
            cmd.arg(wire::CORRELATION_ID).arg(c);
        }
        Ok(cmd)
    }

    /// Creates consumer group `group` if missing (from the start of the stream, creating the
    /// stream too) and returns consumer `name` in it.
    ///
    /// Acknowledged entries are deleted, so each stream serves ONE group: fan-out to several
    /// groups needs one stream per group.
    pub async fn consumer(&self, group: &str, name: &str) -> Result<Consumer, QueueError> {
        self.ensure_group(group).await?;
        Ok(Consumer::new(self.clone(), group, name))
    }

    /// `XGROUP CREATE … 0 MKSTREAM`, treating "already exists" as success.
    pub async fn ensure_group(&self, group: &str) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let created: Result<Value, _> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.inner.keys.stream)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves retries whose time has come back onto the stream with `attempt` + 1.
    /// Safe to run from every consumer at once. Returns how many moved (at most
    /// `promote_batch`; call again when it returns a full batch).
    pub async fn promote_due(&self) -> Result<usize, QueueError> {
        let keys = &self.inner.keys;
        let mut conn = self.conn().await?;
        let moved: usize = scripts::PROMOTE_DUE
            .key(&keys.delayed)
            .key(&keys.stream)
            .key(&keys.dead)
            .arg(self.inner.config.promote_batch.max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok(moved)
    }

    /// True when `group` has already applied message `message_id`.
    pub async fn already_done(&self, group: &str, message_id: &str) -> Result<bool, QueueError> {
        let mut conn = self.conn().await?;
        let mark: Option<String> = redis::cmd("GET")
            .arg(done_key(&self.inner.config.prefix, group, message_id))
            .query_async(&mut conn)
            .await?;
        Ok(mark.as_deref() == Some(DONE))
    }

    /// Takes the right to apply `message_id` for `group`, for `lease` (one `SET NX GET`).
    ///
    /// Two copies of one message (a relay re-publish, a re-claim) may be fetched at once by
    /// different handlers; a check-then-mark would let both through. The first claimant
    /// gets [`OnceClaim::Acquired`]; the other learns the message is done or in progress.
    pub async fn claim_once(
        &self,
        group: &str,
        message_id: &str,
        lease: Duration,
    ) -> Result<OnceClaim, QueueError> {
        let mut conn = self.conn().await?;
        let previous: Option<String> = redis::cmd("SET")
            .arg(done_key(&self.inner.config.prefix, group, message_id))
            .arg(RUNNING)
            .arg("NX")
            .arg("PX")
            .arg(millis(lease))
            .arg("GET")
            .query_async(&mut conn)
            .await?;
        Ok(match previous.as_deref() {
            None => OnceClaim::Acquired,
            Some(DONE) => OnceClaim::Done,
            Some(_) => OnceClaim::InProgress,
        })
    }

    /// Gives a claim back after a failed attempt, so the retry can take it again.
    pub async fn release_once(&self, group: &str, message_id: &str) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let () = redis::cmd("DEL")
            .arg(done_key(&self.inner.config.prefix, group, message_id))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Records that `group` applied `message_id`, for `ttl`. Returns false if it was already
    /// recorded as done (PX rather than EX so sub-second test TTLs work).
    pub async fn mark_done(
        &self,
        group: &str,
        message_id: &str,
        ttl: Duration,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn().await?;
        let previous: Option<String> = redis::cmd("SET")
            .arg(done_key(&self.inner.config.prefix, group, message_id))
            .arg(DONE)
            .arg("PX")
            .arg(millis(ttl))
            .arg("GET")
            .query_async(&mut conn)
            .await?;
        Ok(previous.as_deref() != Some(DONE))
    }

    /// The oldest `count` dead letters, for inspection or a re-drive tool.
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut conn = self.conn().await?;
        let reply: Value = redis::cmd("XRANGE")
            .arg(&self.inner.keys.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut conn)
            .await?;
        Ok(wire::parse_entries(reply)?
            .into_iter()
            .map(|e| DeadLetter::from_fields(e.id, &e.fields.unwrap_or_default()))
            .collect())
    }
}
