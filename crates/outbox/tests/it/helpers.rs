use std::collections::HashMap;
use std::time::Duration;

use kloyst_outbox::{Relay, RelaySettings};
use kloyst_queue::{redis, Keys, QueueConfig};
use kloyst_testkit::TestStores;

pub const STREAM: &str = "jobs";

pub fn queue_config(stores: &TestStores) -> QueueConfig {
    QueueConfig {
        visibility_timeout: Duration::from_millis(300),
        fetch_block: Duration::from_millis(100),
        maintenance_interval: Duration::from_millis(100),
        ..QueueConfig::with_prefix(stores.redis_prefix.clone())
    }
}

pub fn relay(stores: &TestStores, settings: RelaySettings) -> Relay {
    Relay::new(
        stores.pg.clone(),
        stores.redis.clone(),
        queue_config(stores),
        settings,
    )
}

/// Every entry of the stream as its fields, oldest first.
pub async fn stream_entries(stores: &TestStores) -> Vec<HashMap<String, String>> {
    let key = Keys::new(&stores.redis_prefix, STREAM).stream;
    let mut conn = stores.redis.get().await.unwrap();
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    reply
        .ids
        .into_iter()
        .map(|entry| {
            entry
                .map
                .into_iter()
                .map(|(k, v)| (k, redis::from_redis_value::<String>(v).unwrap()))
                .collect()
        })
        .collect()
}

pub async fn unpublished(stores: &TestStores) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
        .fetch_one(&stores.pg)
        .await
        .unwrap()
}
