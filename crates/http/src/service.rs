//! The one `main` every Kloyst binary runs: read configuration (one clear line and exit 2
//! if it is wrong), set up tracing, bind the port, run until SIGTERM or Ctrl-C, exit 0.

use std::error::Error;
use std::future::Future;
use std::process::ExitCode;

use kloyst_config::sections::CommonSettings;
use kloyst_config::{ConfigError, Env};
use kloyst_db::redis::RedisPool;
use kloyst_db::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub type BoxError = Box<dyn Error + Send + Sync>;

/// A Kloyst process. Tests call [`Service::run`] with their own listener on port 0 and
/// their own token; `main` calls [`main`].
pub trait Service: Sized + Send + 'static {
    const NAME: &'static str;

    fn from_env(env: &Env) -> Result<Self, ConfigError>;

    /// The stores, logging and shutdown settings every service has.
    fn common(&self) -> &CommonSettings;

    /// The HTTP port: the API for the HTTP services, metrics and health for the workers.
    fn port(&self) -> u16;

    /// Runs until `shutdown` is cancelled and in-flight work is finished or handed back.
    fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// The body of every service binary's `main`.
pub fn main<S: Service>() -> ExitCode {
    let config = match S::from_env(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}: {error}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{}: cannot start the async runtime: {error}", S::NAME);
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let _telemetry = match kloyst_telemetry::init_tracing(S::NAME, &config.common().telemetry) {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("{}: {error}", S::NAME);
                return ExitCode::from(2);
            }
        };
        let port = config.port();
        let listener = match TcpListener::bind(("0.0.0.0", port)).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(port, %error, "cannot listen on the configured port");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = crate::server::shutdown_on_signal();
        match config.run(listener, shutdown).await {
            Ok(()) => {
                tracing::info!("stopped cleanly");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, "stopped on an error");
                ExitCode::FAILURE
            }
        }
    })
}

/// The two stores, as every service connects to them: lazily, so a service starts (and
/// reports not-ready) while one is down.
#[derive(Clone)]
pub struct Stores {
    pub pg: PgPool,
    pub redis: RedisPool,
}

impl Stores {
    pub fn connect(service: &'static str, common: &CommonSettings) -> Result<Self, BoxError> {
        Ok(Self {
            pg: kloyst_db::connect(&common.database, service)?,
            redis: kloyst_db::redis::connect(&common.redis)?,
        })
    }

    pub fn health(&self, service: &'static str) -> crate::health::HealthState {
        crate::health::HealthState::new(service, self.pg.clone(), self.redis.clone())
    }
}
