//! worker-pool: consumes jobs from Redis streams and runs them (dispatch to Meta, mail, …).
//! Serves only health, readiness and metrics over HTTP. Any number of copies share the work
//! through one consumer group.

mod handlers;
mod jobs;

use kloyst_config::sections::{self, CommonSettings, MailSettings};
use kloyst_config::{ConfigError, Env};
use kloyst_contacts::{ImportRunner, ImportRunnerSettings};
use kloyst_http::health;
use kloyst_http::service::{BoxError, Service, Stores};
use kloyst_queue::{Queue, QueueConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use handlers::default_router;
pub use jobs::JobRouter;

/// The stream of background jobs and the consumer group every worker-pool copy joins.
pub const JOBS_STREAM: &str = kloyst_queue::streams::JOBS;
pub const CONSUMER_GROUP: &str = "worker-pool";

/// Configuration of the worker-pool (see `.env.example`).
#[derive(Clone, Debug)]
pub struct WorkerPool {
    pub common: CommonSettings,
    /// `METRICS_PORT`, default 9101.
    pub port: u16,
    /// `WORKER_CONCURRENCY` (32), `JOB_MAX_ATTEMPTS` (5), `JOB_VISIBILITY_TIMEOUT` (30s),
    /// `JOB_BACKOFF_BASE` (1s: the first retry waits up to this, doubling per attempt),
    /// `JOB_BACKOFF_MAX` (5m).
    pub queue: QueueConfig,
    /// `SMTP_URL` (unset = mails are written to the log), `MAIL_FROM`.
    pub mail: MailSettings,
    /// `IMPORT_CONCURRENCY`, `IMPORT_LEASE`, `IMPORT_POLL_INTERVAL`.
    pub imports: ImportRunnerSettings,
    /// `META_*`, `META_HTTP_TIMEOUT`, `TEMPLATE_SUBMIT_PER_HOUR` (100); `None` without Meta
    /// (development only: elsewhere the process refuses to start).
    pub template_submitter: Option<kloyst_templates::TemplateSubmitterSettings>,
    /// `META_*`, `META_SEND_RATE`, `CAMPAIGN_*`; `None` without Meta (development only).
    pub campaigns: Option<CampaignSettings>,
    /// `CAMPAIGN_SETTLE_AFTER` (24h), `CAMPAIGN_SETTLE_INTERVAL` (60s),
    /// `BOOKS_RECONCILE_INTERVAL` (24h): campaign settlement and the books reconciliation.
    pub settlement: kloyst_delivery::SettlementSettings,
}

/// What campaign dispatch needs: its knobs and the Meta client.
#[derive(Clone, Debug)]
pub struct CampaignSettings {
    pub dispatch: kloyst_dispatch::DispatchSettings,
    pub meta: kloyst_meta::MetaClientSettings,
}

impl CampaignSettings {
    /// `None` when Meta is not configured at all (neither `META_ACCESS_TOKEN` nor
    /// `META_WABA_ID`); an error when it is half configured.
    pub fn from_env_if_configured(env: &Env) -> Result<Option<Self>, ConfigError> {
        if env.optional("META_ACCESS_TOKEN").is_none() && env.optional("META_WABA_ID").is_none() {
            return Ok(None);
        }
        let api = sections::MetaApiSettings::from_env(env)?;
        Ok(Some(Self {
            dispatch: kloyst_dispatch::DispatchSettings::from_env_with(env, &api)?,
            meta: kloyst_meta::MetaClientSettings::from_env(&api, env)?,
        }))
    }
}

impl Service for WorkerPool {
    const NAME: &'static str = "worker-pool";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env(env)?;
        let defaults = QueueConfig::with_prefix(common.redis.key_prefix.clone());
        let queue = QueueConfig {
            concurrency: env.parse_or("WORKER_CONCURRENCY", 32)?,
            max_attempts: env.parse_or("JOB_MAX_ATTEMPTS", defaults.max_attempts)?,
            visibility_timeout: env
                .duration_or("JOB_VISIBILITY_TIMEOUT", defaults.visibility_timeout)?,
            backoff_base: env.duration_or("JOB_BACKOFF_BASE", defaults.backoff_base)?,
            backoff_max: env.duration_or("JOB_BACKOFF_MAX", defaults.backoff_max)?,
            shutdown_grace: common.shutdown_grace,
            ..defaults
        };
        Ok(Self {
            port: sections::port(env, "METRICS_PORT", 9101)?,
            common,
            queue,
            mail: MailSettings::from_env(env)?,
            imports: ImportRunnerSettings::from_env(env)?,
            template_submitter:
                kloyst_templates::TemplateSubmitterSettings::from_env_if_configured(env)?,
            campaigns: CampaignSettings::from_env_if_configured(env)?,
            settlement: kloyst_delivery::SettlementSettings::from_env(env)?,
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
        let name = consumer_name();
        let imports = ImportRunner::new(stores.pg.clone(), name.clone(), self.imports.clone());
        let dispatcher = handlers::campaigns::dispatcher(&self)?;
        let router = handlers::router_with(&self, dispatcher.as_ref())?;
        let router = handlers::imports::register(router, &imports);
        let reconcile = async {
            if let Some(dispatcher) = &dispatcher {
                dispatcher.supervise(shutdown.clone()).await;
            }
        };
        let settlement = kloyst_delivery::supervise_settlement(
            stores.pg.clone(),
            self.settlement,
            shutdown.clone(),
        );
        let (consumed, (), (), ()) = tokio::join!(
            self.consume(router, stores, name, listener, shutdown.clone()),
            imports.supervise(shutdown.clone()),
            reconcile,
            settlement,
        );
        consumed
    }
}

impl WorkerPool {
    /// Runs with the given job handlers: [`default_router`] in production, a router of test
    /// jobs in tests.
    pub async fn run_with(
        self,
        router: JobRouter,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), BoxError> {
        let stores = Stores::connect(Self::NAME, &self.common)?;
        self.consume(router, stores, consumer_name(), listener, shutdown)
            .await
    }

    async fn consume(
        self,
        router: JobRouter,
        stores: Stores,
        consumer_name: String,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), BoxError> {
        let queue = Queue::new(stores.redis.clone(), self.queue, JOBS_STREAM);
        let consumer = queue.consumer(CONSUMER_GROUP, &consumer_name).await?;
        tracing::info!(
            consumer = consumer_name,
            kinds = ?router.kinds().collect::<Vec<_>>(),
            "consuming jobs"
        );
        let app = health::worker_app(stores.health(Self::NAME));
        let (served, report) = tokio::join!(
            kloyst_http::server::serve(listener, app, shutdown.clone()),
            kloyst_queue::run_consumer(consumer, router, shutdown.clone()),
        );
        tracing::info!(?report, "job consumer stopped");
        served?;
        Ok(())
    }
}

/// This process among its peers: in consumer groups and job leases.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}
