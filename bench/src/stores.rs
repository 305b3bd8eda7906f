//! A fresh benchmark database and Redis prefix.

use anyhow::{Context, Result};
use kloyst_config::sections::{DatabaseSettings, RedisSettings};
use kloyst_config::Env;
use kloyst_db::redis::RedisPool;
use kloyst_db::PgPool;
use sqlx::Connection;

pub struct BenchStores {
    pub pg: PgPool,
    pub redis: RedisPool,
    pub prefix: String,
    pub database_url: String,
}

pub async fn fresh(name: &str) -> Result<BenchStores> {
    let server = std::env::var("BENCH_PG_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .context("connect to Postgres")?;
    // Two statements: a multi-statement string would run in one implicit transaction.
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let database_url = format!("{server}/{name}");
    let env = Env::from_pairs([
        ("DATABASE_URL", database_url.as_str()),
        ("DATABASE_MAX_CONNECTIONS", "16"),
        ("REDIS_URL", redis_url.as_str()),
        ("REDIS_POOL_SIZE", "16"),
    ]);
    let pg = kloyst_db::connect(&DatabaseSettings::from_env(&env)?, "kloyst-bench")?;
    kloyst_db::migrate(&pg).await?;
    let redis = kloyst_db::redis::connect(&RedisSettings::from_env(&env)?)?;
    Ok(BenchStores {
        pg,
        redis,
        prefix: format!("bench{}", uuid::Uuid::new_v4().simple()),
        database_url,
    })
}

impl BenchStores {
    pub async fn drop_redis_keys(&self) -> Result<()> {
        let mut conn = self.redis.get().await?;
        let keys: Vec<String> = kloyst_queue::redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let () = kloyst_queue::redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
        }
        Ok(())
    }
}
