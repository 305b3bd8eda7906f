use std::future::Future;
use std::time::Duration;

use kloyst_config::sections::RedisSettings;
use kloyst_config::Env;
use kloyst_queue::redis;
use kloyst_queue::{Queue, QueueConfig};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Short durations so the tests run in milliseconds, under a fresh prefix.
pub fn config() -> QueueConfig {
    QueueConfig {
        prefix: format!("kloyst-test:{}", uuid::Uuid::new_v4().simple()),
        visibility_timeout: Duration::from_millis(200),
        max_attempts: 3,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        fetch_block: Duration::from_millis(50),
        concurrency: 8,
        maintenance_interval: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(5),
        dedupe_ttl: Some(Duration::from_secs(60)),
        promote_batch: 100,
        error_backoff: Duration::from_millis(50),
    }
}

/// A pool built the way the services build theirs.
pub fn pool_for(url: &str) -> kloyst_queue::Pool {
    let env = Env::from_pairs([("REDIS_URL", url), ("REDIS_POOL_SIZE", "16")]);
    kloyst_db::redis::connect(&RedisSettings::from_env(&env).expect("settings")).expect("pool")
}

pub fn queue_pool() -> kloyst_queue::Pool {
    pool_for(&redis_url())
}

pub fn queue_with(config: QueueConfig) -> Queue {
    Queue::new(queue_pool(), config, "jobs")
}

pub fn queue() -> Queue {
    queue_with(config())
}

/// Deletes every key under the queue's prefix.
pub async fn cleanup(queue: &Queue) {
    let client = redis::Client::open(redis_url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let pattern = format!("{}:*", queue.config().prefix);
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("scan");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .expect("del");
    }
}

/// A raw connection for checks the library does not expose.
pub async fn raw_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// Polls `check` every 10 ms until it returns `Some`, failing after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendTemplate {
    pub vendor_id: uuid::Uuid,
    pub to: String,
    pub template: String,
}

impl kloyst_queue::Job for SendTemplate {
    const KIND: &'static str = "dispatch.send_template";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeWallet {
    pub amount_paise: i64,
}

impl kloyst_queue::Job for ChargeWallet {
    const KIND: &'static str = "billing.charge";
}
