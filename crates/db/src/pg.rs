use std::str::FromStr;
use std::time::Duration;

use kloyst_config::sections::DatabaseSettings;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid DATABASE_URL: {0}")]
    Url(sqlx::Error),
    #[error("postgres: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("postgres did not answer within {0:?}")]
    Timeout(Duration),
}

/// Connections idle longer than this are pinged before use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// A lazily-connecting pool: a service starts (and reports not-ready) while Postgres is
/// down, and recovers by itself when it comes back.
pub fn connect(settings: &DatabaseSettings, application_name: &str) -> Result<PgPool, DbError> {
    let options = PgConnectOptions::from_str(settings.url.expose())
        .map_err(DbError::Url)?
        .application_name(application_name);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        // A ping before every acquire doubled the round trips of short requests. Only a
        // connection that sat idle is pinged: busy connections are known to be alive, and a
        // Postgres restart is found on the idle ones before a request uses them.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < IDLE_BEFORE_PING {
                    return Ok(true);
                }
                Ok(conn.ping().await.is_ok())
            })
        })
        .connect_lazy_with(options))
}

/// Applies the migrations embedded in this binary. Run once per deploy by `kloyst-admin
/// migrate`; replicas never race to migrate.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    sqlx::migrate!("../../migrations").run(pool).await?;
    Ok(())
}

/// Readiness probe: one round trip, bounded.
pub async fn ping(pool: &PgPool, timeout: Duration) -> Result<(), DbError> {
    tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(pool))
        .await
        .map_err(|_| DbError::Timeout(timeout))??;
    Ok(())
}
