//! outbox-relay: publishes committed outbox events to Redis streams.
//! Serves only health, readiness and metrics over HTTP.

use kloyst_config::sections::{self, CommonSettings};
use kloyst_config::{ConfigError, Env};
use kloyst_http::health;
use kloyst_http::service::{BoxError, Service, Stores};
use kloyst_outbox::{Relay, RelaySettings};
use kloyst_queue::QueueConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Configuration of the outbox-relay (see `.env.example`).
#[derive(Clone, Debug)]
pub struct OutboxRelay {
    pub common: CommonSettings,
    /// `METRICS_PORT`, default 9102.
    pub port: u16,
    /// `OUTBOX_BATCH_SIZE` (1000), `OUTBOX_POLL_INTERVAL` (1s), `OUTBOX_RETENTION` (7d).
    pub relay: RelaySettings,
}

impl Service for OutboxRelay {
    const NAME: &'static str = "outbox-relay";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = RelaySettings::default();
        let batch_size: i64 = env.parse_or("OUTBOX_BATCH_SIZE", defaults.batch_size)?;
        if !(1..=10_000).contains(&batch_size) {
            return Err(ConfigError::Invalid {
                var: "OUTBOX_BATCH_SIZE",
                reason: "must be between 1 and 10000".into(),
            });
        }
        Ok(Self {
            common: CommonSettings::from_env(env)?,
            port: sections::port(env, "METRICS_PORT", 9102)?,
            relay: RelaySettings {
                batch_size,
                poll_interval: env.duration_or("OUTBOX_POLL_INTERVAL", defaults.poll_interval)?,
                retention: env.duration_or("OUTBOX_RETENTION", defaults.retention)?,
                ..defaults
            },
        })
    }

    fn common(&self) -> &CommonSettings {
        &self.common
    }

    fn port(&self) -> u16 {
        self.port
    }

    async fn run(self, listener: TcpListener, shutdown: CancellationToken) -> Result<(), BoxError> {
        let stores = Stores::connect(Self::NAME, &self.common)?;
        let queue_config = QueueConfig::with_prefix(self.common.redis.key_prefix.clone());
        let app = health::worker_app(stores.health(Self::NAME));
        let relay = Relay::new(stores.pg, stores.redis, queue_config, self.relay);
        let (served, ()) = tokio::join!(
            kloyst_http::server::serve(listener, app, shutdown.clone()),
            relay.run(shutdown.clone()),
        );
        served?;
        Ok(())
    }
}
