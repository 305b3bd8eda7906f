//! What travels on a stream: the message a producer sends and the one a consumer receives.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::QueueError;
use crate::wire::{self, RawFields};

/// A typed job. `KIND` is written on the wire so a consumer can check what it decodes.
pub trait Job: Serialize + DeserializeOwned {
    /// Stable name of the job on the wire (`"dispatch.message"`); renaming it strands messages.
    const KIND: &'static str;
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// Consumers dedupe on it: the outbox event id for relayed events, else a fresh uuid.
    pub id: String,
    /// What the payload is (`Job::KIND` for typed jobs).
    pub kind: String,
    /// The job itself.
    pub payload: serde_json::Value,
    /// The request id of the HTTP request that caused this work, for tracing across processes.
    pub correlation_id: Option<String>,
}

impl OutgoingMessage {
    /// A message with a fresh, time-ordered id.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.into(),
            payload,
            correlation_id: None,
        }
    }

    /// A message carrying a typed job.
    pub fn from_job<J: Job>(job: &J) -> Result<Self, QueueError> {
        let payload = serde_json::to_value(job).map_err(|source| QueueError::Payload {
            kind: J::KIND.to_owned(),
            source,
        })?;
        Ok(Self::new(J::KIND, payload))
    }

    /// Replaces the id (e.g. with the outbox event id, so consumers dedupe re-publishes).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the correlation (request) id.
    #[must_use]
    pub fn with_correlation_id(mut self, correlation_id: Option<String>) -> Self {
        self.correlation_id = correlation_id;
        self
    }
}

/// A message as read back from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The producer's message id (dedupe key).
    pub id: String,
    /// The message kind.
    pub kind: String,
    /// The payload as JSON text; kept as text so a typed decode parses it once.
    pub payload: String,
    /// 1 on first publication, +1 on each retry.
    pub attempt: u32,
    /// Request id carried from the HTTP request, if any.
    pub correlation_id: Option<String>,
    /// When it was first published (unix ms); retries keep the original time.
    pub enqueued_at_ms: u64,
}

impl IncomingMessage {
    /// Decodes the payload as job `J`, refusing messages of another kind.
    pub fn decode<J: Job>(&self) -> Result<J, QueueError> {
        if self.kind != J::KIND {
            return Err(QueueError::KindMismatch {
                expected: J::KIND,
                found: self.kind.clone(),
            });
        }
        serde_json::from_str(&self.payload).map_err(|source| QueueError::Payload {
            kind: self.kind.clone(),
            source,
        })
    }

    /// The payload as an untyped JSON value.
    pub fn payload_json(&self) -> Result<serde_json::Value, QueueError> {
        serde_json::from_str(&self.payload).map_err(|source| QueueError::Payload {
            kind: self.kind.clone(),
            source,
        })
    }

    /// Reads the wire fields of entry `entry_id`. `Err` names what is wrong with the entry.
    pub(crate) fn from_fields(entry_id: &str, fields: &RawFields) -> Result<Self, String> {
        let text = |name: &str| -> Result<Option<String>, String> {
            match wire::field(fields, name) {
                None => Ok(None),
                Some(bytes) => String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|_| format!("field `{name}` is not UTF-8")),
            }
        };
        let required = |name: &str| text(name)?.ok_or_else(|| format!("field `{name}` is missing"));
        let attempt = match text(wire::ATTEMPT)? {
            None => 1,
            Some(s) => s
                .parse()
                .map_err(|_| format!("field `attempt` is not a number: {s:?}"))?,
        };
        // A foreign producer may omit the time; the entry id carries one.
        let enqueued_at_ms = match text(wire::ENQUEUED_AT)? {
            None => wire::entry_id_ms(entry_id).unwrap_or(0),
            Some(s) => s
                .parse()
                .map_err(|_| format!("field `enqueued_at` is not a number: {s:?}"))?,
        };
        Ok(Self {
            id: required(wire::ID)?,
            kind: required(wire::KIND)?,
            payload: required(wire::PAYLOAD)?,
            attempt,
            correlation_id: text(wire::CORRELATION_ID)?,
            enqueued_at_ms,
        })
    }
}

/// One entry handed to one consumer; ack, retry or dead-letter it exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The stream entry id (`1712345678901-0`), needed to acknowledge it.
    pub entry_id: String,
    /// The message it carries.
    pub message: IncomingMessage,
}

impl Delivery {
    /// Shorthand for `self.message.decode::<J>()`.
    pub fn decode<J: Job>(&self) -> Result<J, QueueError> {
        self.message.decode()
    }
}

/// An entry of the dead-letter stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub entry_id: String,
    /// The original message, `None` if the original entry itself was malformed.
    pub message: Option<IncomingMessage>,
    /// Why it was given up on.
    pub error: String,
    /// When (unix ms, Redis clock).
    pub failed_at_ms: u64,
    /// Its id in the work stream.
    pub original_entry_id: Option<String>,
}

impl DeadLetter {
    pub(crate) fn from_fields(entry_id: String, fields: &RawFields) -> Self {
        let text =
            |name: &str| wire::field(fields, name).map(|b| String::from_utf8_lossy(b).into_owned());
        Self {
            message: IncomingMessage::from_fields(&entry_id, fields).ok(),
            error: text(wire::ERROR).unwrap_or_default(),
            failed_at_ms: text(wire::FAILED_AT)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            original_entry_id: text(wire::ORIGINAL_ENTRY_ID),
            entry_id,
        }
    }
}
