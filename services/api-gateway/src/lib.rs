//! api-gateway: the REST API (`/v1/*`) for the dashboard and integrations.
//!
//! Handlers parse and answer; the rules live in the domain crates.

use std::time::Duration;

use axum::Router;
use kloyst_config::sections::{self, AuthSettings, CommonSettings, DataKey};
use kloyst_config::{ConfigError, Env};
use kloyst_http::health::{self, HealthState};
use kloyst_http::middleware::{self, Limits};
use kloyst_http::service::{BoxError, Service, Stores};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Configuration of the api-gateway (see `.env.example`).
#[derive(Clone, Debug)]
pub struct ApiGateway {
    pub common: CommonSettings,
    /// `API_PORT`, default 3000.
    pub port: u16,
    pub auth: AuthSettings,
    pub data_key: DataKey,
    /// `API_BODY_LIMIT` (bytes, default 1 MiB; upload routes set their own),
    /// `API_REQUEST_TIMEOUT` (default 30s).
    pub limits: Limits,
}

impl Service for ApiGateway {
    const NAME: &'static str = "api-gateway";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonSettings::from_env(env)?,
            port: sections::port(env, "API_PORT", 3000)?,
            auth: AuthSettings::from_env(env)?,
            data_key: DataKey::from_env(env)?,
            limits: Limits {
                body_bytes: env.parse_or("API_BODY_LIMIT", 1024 * 1024)?,
                request_timeout: env.duration_or("API_REQUEST_TIMEOUT", Duration::from_secs(30))?,
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
        let app = middleware::stack(router(stores.health(Self::NAME)), Self::NAME, self.limits);
        kloyst_http::server::serve(listener, app, shutdown).await?;
        Ok(())
    }
}

fn router(health: HealthState) -> Router {
    Router::new().merge(health::routes(health, Some("/v1")))
}
