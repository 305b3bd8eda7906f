//! A limiter on the test Redis under a key prefix of its own, and a server on port 0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use deadpool_redis::redis;
use kloyst_config::sections::RedisSettings;
use kloyst_config::Env;
use kloyst_db::redis::RedisPool;
use kloyst_ratelimit::{Quota, RateLimiter};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Unique per test and per run, so parallel tests and reruns never share a bucket.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("trl{}x{nanos}x{n}", std::process::id())
}

pub fn pool(url: &str) -> RedisPool {
    let env = Env::from_pairs([
        ("REDIS_URL", url),
        ("REDIS_TIMEOUT", "1s"),
        ("REDIS_POOL_SIZE", "16"),
    ]);
    kloyst_db::redis::connect(&RedisSettings::from_env(&env).unwrap()).unwrap()
}

/// Its keys need no clean-up: they expire after the quota's period.
pub struct TestLimiter {
    pub limiter: RateLimiter,
    pub pool: RedisPool,
    pub prefix: String,
}

impl TestLimiter {
    pub fn new() -> Self {
        let pool = pool(&kloyst_testkit::redis_url());
        let prefix = unique_prefix();
        Self {
            // Generous: 200 concurrent checks queue for 16 connections on a busy machine.
            limiter: RateLimiter::new(pool.clone(), prefix.clone())
                .with_timeout(Duration::from_secs(5)),
            pool,
            prefix,
        }
    }

    pub async fn keys(&self) -> Vec<String> {
        let mut conn = self.pool.get().await.unwrap();
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.sort();
        keys
    }

    pub async fn pttl(&self, key: &str) -> i64 {
        let mut conn = self.pool.get().await.unwrap();
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap()
    }
}

pub fn quota(s: &str) -> Quota {
    Quota::parse(s).unwrap()
}

/// The Redis server's address, for a [`kloyst_testkit::TcpProxy`] in front of it.
pub async fn redis_addr() -> SocketAddr {
    let url = reqwest::Url::parse(&kloyst_testkit::redis_url()).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let port = url.port().unwrap_or(6379);
    tokio::net::lookup_host((host, port))
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// A router served the way the services serve it (with `ConnectInfo<SocketAddr>`).
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Server {
    pub async fn start(router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(kloyst_http::server::serve(
            listener,
            router,
            shutdown.clone(),
        ));
        Self {
            base,
            client: reqwest::Client::new(),
            shutdown,
        }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}
