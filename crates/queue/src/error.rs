//! The crate's one error type.

use deadpool_redis::redis::RedisError;

/// Everything a queue operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No connection could be had from the pool (Redis down, pool exhausted).
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    /// Redis answered with an error or the connection broke mid-command.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// The pool could not be built (bad URL, bad settings).
    #[error("redis pool setup: {0}")]
    PoolSetup(String),
    /// Redis answered with a shape we do not expect (a bug or a foreign writer).
    #[error("unexpected redis reply: {0}")]
    Protocol(String),
    /// A payload could not be turned into or out of JSON.
    #[error("payload of a `{kind}` message: {source}")]
    Payload {
        /// The message kind involved.
        kind: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// `decode::<J>()` on a message of another kind.
    #[error("expected a `{expected}` message, got `{found}`")]
    KindMismatch {
        /// `J::KIND`.
        expected: &'static str,
        /// The message's kind.
        found: String,
    },
}

impl QueueError {
    /// True when Redis itself failed (down, restarting, timed out): worth retrying later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
            }
            _ => false,
        }
    }

    /// The Redis error code (`NOGROUP`, `BUSYGROUP`, …), if Redis sent one.
    pub(crate) fn redis_code(&self) -> Option<&str> {
        match self {
            Self::Redis(e) => e.code(),
            _ => None,
        }
    }
}
