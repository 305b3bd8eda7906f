//! Test support against the real Postgres and Redis (never mocks).
//!
//! [`TestStores::new`] creates a freshly migrated database named `kloyst_test_<uuid>` and
//! a random Redis key prefix, so tests run in parallel without seeing each other's data.
//! `make test` drops the `kloyst_test_*` databases left by earlier runs.

#![allow(clippy::expect_used)] // test support: a failure here should stop the test loudly

mod proxy;
mod service;

use std::time::Duration;

pub use proxy::TcpProxy;
pub use service::{free_port, signal, spawn_binary, wait_until_ready, RunningService};

use kloyst_config::Env;
use kloyst_db::redis::RedisPool;
use kloyst_db::PgPool;
use sqlx::Connection;

/// `TEST_DATABASE_URL` points at a database on the server the tests may create databases
/// on; `TEST_REDIS_URL` at the Redis to use.
pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub struct TestStores {
    pub pg: PgPool,
    pub database_url: String,
    pub database_name: String,
    pub redis: RedisPool,
    pub redis_url: String,
    /// Every Redis key this test uses starts with it.
    pub redis_prefix: String,
}

impl TestStores {
    pub async fn new() -> Self {
        let admin_url = admin_database_url();
        let database_name = format!("kloyst_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to the test Postgres (is it running? `make services`)");
        sqlx::raw_sql(&format!("CREATE DATABASE {database_name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;

        let database_url = with_database(&admin_url, &database_name);
        let env = Self::env_for(&database_url, &redis_url(), "unused");
        let db_settings =
            kloyst_config::sections::DatabaseSettings::from_env(&env).expect("database settings");
        let pg = kloyst_db::connect(&db_settings, "kloyst-test").expect("pool");
        kloyst_db::migrate(&pg).await.expect("migrations apply");

        let redis_prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        let redis_settings =
            kloyst_config::sections::RedisSettings::from_env(&env).expect("redis settings");
        let redis = kloyst_db::redis::connect(&redis_settings).expect("redis pool");
        kloyst_db::redis::ping(&redis, Duration::from_secs(2))
            .await
            .expect("the test Redis answers (is it running? `make services`)");

        Self {
            pg,
            database_url,
            database_name,
            redis,
            redis_url: redis_url(),
            redis_prefix,
        }
    }

    /// A complete configuration for any service, pointing at this test's stores.
    pub fn env(&self) -> Env {
        self.env_with_urls(&self.database_url, &self.redis_url)
    }

    /// The same configuration with other store URLs (e.g. through a [`TcpProxy`]).
    pub fn env_with_urls(&self, database_url: &str, redis_url: &str) -> Env {
        Self::env_for(database_url, redis_url, &self.redis_prefix)
    }

    /// The database URL with its host and port replaced by `addr`.
    pub fn database_url_via(&self, addr: std::net::SocketAddr) -> String {
        self.database_url
            .replacen("127.0.0.1:5432", &addr.to_string(), 1)
    }

    /// A Redis URL pointing at `addr`.
    pub fn redis_url_via(addr: std::net::SocketAddr) -> String {
        format!("redis://{addr}")
    }

    fn env_for(database_url: &str, redis_url: &str, prefix: &str) -> Env {
        Env::from_pairs([
            ("DATABASE_URL", database_url),
            ("DATABASE_MAX_CONNECTIONS", "8"),
            ("DATABASE_ACQUIRE_TIMEOUT", "1s"),
            ("REDIS_TIMEOUT", "1s"),
            ("REDIS_URL", redis_url),
            ("REDIS_KEY_PREFIX", prefix),
            ("LOG_FORMAT", "pretty"),
            (
                "JWT_SECRET",
                "test-jwt-secret-that-is-long-enough-0123456789",
            ),
            (
                "DATA_ENCRYPTION_KEY",
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            ),
            ("META_API_BASE", "http://127.0.0.1:9"),
            ("META_ACCESS_TOKEN", "test-token"),
            ("META_WABA_ID", "100000000000001"),
            ("META_PHONE_NUMBER_ID", "100000000000002"),
            ("META_APP_SECRET", "test-meta-app-secret"),
            ("META_VERIFY_TOKEN", "test-verify-token"),
            ("RAZORPAY_API_BASE", "http://127.0.0.1:9"),
            ("RAZORPAY_KEY_ID", "rzp_test_kloyst"),
            ("RAZORPAY_KEY_SECRET", "test-razorpay-key-secret"),
            ("RAZORPAY_WEBHOOK_SECRET", "test-razorpay-webhook-secret"),
            ("SHUTDOWN_GRACE", "5s"),
        ])
    }

    /// Deletes this test's Redis keys (the database is dropped by the next `make test`).
    pub async fn cleanup_redis(&self) {
        let Ok(mut conn) = self.redis.get().await else {
            return;
        };
        let pattern = format!("{}:*", self.redis_prefix);
        let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = deadpool_redis::redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await;
        }
    }
}

/// The same server URL with another database name.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes; for waiting on work done by
/// another task or process without a fixed sleep.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}
