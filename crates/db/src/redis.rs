//! The Redis pool.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::AsyncConnectionConfig;
use deadpool_redis::{Manager, Pool, Runtime};
use kloyst_config::sections::RedisSettings;

pub use deadpool_redis::Pool as RedisPool;

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("could not build the Redis pool: {0}")]
    Build(String),
    #[error("redis: {0}")]
    Command(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// Longest a reply may take: above the queue's blocking `XREADGROUP` (redis-rs would
/// otherwise cut every reply off at 500 ms).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections are made on demand and checked when recycled, so a Redis restart heals
/// itself; a dead Redis fails calls within `settings.timeout` instead of hanging them.
pub fn connect(settings: &RedisSettings) -> Result<Pool, RedisError> {
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let manager = Manager::new_with_config(settings.url.expose().as_str(), connection)
        .map_err(|e| RedisError::Build(e.to_string()))?;
    Pool::builder(manager)
        .max_size(settings.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.timeout))
        .create_timeout(Some(settings.timeout))
        .recycle_timeout(Some(settings.timeout))
        .build()
        .map_err(|e| RedisError::Build(e.to_string()))
}

/// Readiness probe: `PING`, bounded.
pub async fn ping(pool: &Pool, timeout: Duration) -> Result<(), RedisError> {
    let probe = async {
        let mut conn = pool
            .get()
            .await
            .map_err(|e| RedisError::Command(e.to_string()))?;
        deadpool_redis::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| RedisError::Command(e.to_string()))
    };
    tokio::time::timeout(timeout, probe)
        .await
        .map_err(|_| RedisError::Timeout(timeout))??;
    Ok(())
}

/// One multiplexed connection shared by every caller (concurrent commands are pipelined on
/// it), for work done on every request. The pool checks a connection with a PING each time
/// it hands one out: a second round trip per command. Taken from the pool once; after a
/// failure the caller [`SharedConnection::discard`]s it and the next call takes a fresh one,
/// so a Redis restart heals itself.
#[derive(Clone)]
pub struct SharedConnection {
    pool: Pool,
    current: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl SharedConnection {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            current: Arc::new(Mutex::new(None)),
        }
    }

    pub async fn get(&self) -> Result<MultiplexedConnection, deadpool_redis::PoolError> {
        if let Some(connection) = self.current.lock().ok().and_then(|c| c.clone()) {
            return Ok(connection);
        }
        let connection = deadpool_redis::Connection::take(self.pool.get().await?);
        if let Ok(mut current) = self.current.lock() {
            *current = Some(connection.clone());
        }
        Ok(connection)
    }

    /// Drops the connection after a failure: the next [`SharedConnection::get`] takes a fresh
    /// one from the pool.
    pub fn discard(&self) {
        if let Ok(mut current) = self.current.lock() {
            *current = None;
        }
    }
}
