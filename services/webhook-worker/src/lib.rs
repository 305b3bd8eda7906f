//! webhook-worker: receives Meta and Razorpay webhooks (`/webhook/*`), verifies them,
//! persists them before answering, and processes them asynchronously.

use std::time::Duration;

use axum::Router;
use kloyst_config::sections::{self, CommonSettings, MetaWebhookSettings};
use kloyst_config::{ConfigError, Env, Secret};
use kloyst_http::health::{self, HealthState};
use kloyst_http::middleware::{self, Limits};
use kloyst_http::service::{BoxError, Service, Stores};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Configuration of the webhook-worker (see `.env.example`).
#[derive(Clone, Debug)]
pub struct WebhookWorker {
    pub common: CommonSettings,
    /// `WEBHOOK_PORT`, default 3002.
    pub port: u16,
    pub meta: MetaWebhookSettings,
    pub razorpay_webhook_secret: Secret<String>,
    /// Meta sends up to 3 MB per POST: `WEBHOOK_BODY_LIMIT` defaults to 4 MiB.
    pub limits: Limits,
}

impl Service for WebhookWorker {
    const NAME: &'static str = "webhook-worker";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonSettings::from_env(env)?,
            port: sections::port(env, "WEBHOOK_PORT", 3002)?,
            meta: MetaWebhookSettings::from_env(env)?,
            razorpay_webhook_secret: sections::razorpay_webhook_secret(env)?,
            limits: Limits {
                body_bytes: env.parse_or("WEBHOOK_BODY_LIMIT", 4 * 1024 * 1024)?,
                request_timeout: env
                    .duration_or("WEBHOOK_REQUEST_TIMEOUT", Duration::from_secs(10))?,
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
    Router::new().merge(health::routes(health, Some("/webhook")))
}
