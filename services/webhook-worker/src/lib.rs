//! webhook-worker: receives Meta and Razorpay webhooks (`/webhook/*`), verifies them,
//! persists them before answering, and processes them asynchronously.

mod meta_intake;
mod ops;
mod payment_intake;
mod processing;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use kloyst_config::sections::{self, CommonSettings, MetaWebhookSettings};
use kloyst_config::{ConfigError, Env, Secret};
use kloyst_delivery::{ApplierSettings, Pricing, StatusApplier};
use kloyst_http::health;
use kloyst_http::middleware::{self, Limits};
use kloyst_http::service::{BoxError, Service, Stores};
use kloyst_inbox::{InboxNotifier, InboxProcessor, InboxWriter, IntakeSettings, ProcessorSettings};
use kloyst_messaging::InboundSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use processing::WebhookProcessing;

/// Configuration of the webhook-worker (see `.env.example`).
#[derive(Clone, Debug)]
pub struct WebhookWorker {
    pub common: CommonSettings,
    /// `WEBHOOK_PORT`, default 3002.
    pub port: u16,
    pub meta: MetaWebhookSettings,
    /// `RAZORPAY_WEBHOOK_SECRET`, then `RAZORPAY_WEBHOOK_SECRET_PREVIOUS` if set: Razorpay
    /// signs retries of older events with the secret they were first sent with.
    pub razorpay_webhook_secrets: Vec<Secret<String>>,
    /// Meta sends up to 3 MB per POST: `WEBHOOK_BODY_LIMIT` defaults to 4 MiB.
    pub limits: Limits,
    /// `WEBHOOK_INTAKE_*`: how acknowledged webhooks are grouped into inserts.
    pub intake: IntakeSettings,
    /// `WEBHOOK_PROCESS_*`, `WEBHOOK_MAX_ATTEMPTS`, `WEBHOOK_RETRY_*`, `WEBHOOK_POLL_INTERVAL`.
    pub processor: ProcessorSettings,
    /// `INBOUND_DEFAULT_VENDOR_ID`, `OPT_OUT_KEYWORDS`, `OPT_IN_KEYWORDS`.
    pub inbound: InboundSettings,
    /// `OPS_TOKEN` (optional, at least 24 characters): enables `/internal/dead-letters`.
    pub ops_token: Option<Secret<String>>,
    /// `STATUS_APPLY_BATCH`, `STATUS_PARK_TIMEOUT`, `STATUS_APPLY_POLL`: the status applier.
    pub status_applier: ApplierSettings,
}

impl Service for WebhookWorker {
    const NAME: &'static str = "webhook-worker";

    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = CommonSettings::from_env(env)?;
        let intake = IntakeSettings::from_env(env)?;
        let processor = ProcessorSettings::from_env(env)?;
        // Writers keep their connections; processing batches and the claim need theirs too.
        // The status applier's batch (and its pricing reads) wait for a free connection like
        // the claim does: nothing holds a connection while waiting on the applier.
        let needed = intake.writers + processor.concurrency + 1;
        if (common.database.max_connections as usize) < needed {
            return Err(ConfigError::Invalid {
                var: "DATABASE_MAX_CONNECTIONS",
                reason: format!(
                    "the webhook-worker needs at least {needed} (WEBHOOK_INTAKE_WRITERS + \
                     WEBHOOK_PROCESS_CONCURRENCY + 1)"
                ),
            });
        }
        let ops_token = match env.optional("OPS_TOKEN") {
            Some(_) => Some(env.required_secret("OPS_TOKEN", 24)?),
            None => None,
        };
        Ok(Self {
            common,
            port: sections::port(env, "WEBHOOK_PORT", 3002)?,
            meta: MetaWebhookSettings::from_env(env)?,
            razorpay_webhook_secrets: {
                let mut secrets = vec![sections::razorpay_webhook_secret(env)?];
                if env.optional("RAZORPAY_WEBHOOK_SECRET_PREVIOUS").is_some() {
                    secrets.push(env.required_secret("RAZORPAY_WEBHOOK_SECRET_PREVIOUS", 8)?);
                }
                secrets
            },
            limits: Limits {
                body_bytes: env.parse_or("WEBHOOK_BODY_LIMIT", 4 * 1024 * 1024)?,
                request_timeout: env
                    .duration_or("WEBHOOK_REQUEST_TIMEOUT", Duration::from_secs(10))?,
            },
            intake,
            processor,
            inbound: InboundSettings::from_env(env)?,
            ops_token,
            status_applier: ApplierSettings::from_env(env)?,
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
        let notifier = InboxNotifier::new(stores.redis.clone(), &self.common.redis.key_prefix);
        let (inbox, writer_task) = InboxWriter::start(
            stores.pg.clone(),
            self.intake.clone(),
            Some(notifier.clone()),
        );
        let applier = Arc::new(StatusApplier::new(
            stores.pg.clone(),
            Pricing::new(stores.pg.clone()),
            self.status_applier.clone(),
        ));
        let processor = InboxProcessor::new(
            stores.pg.clone(),
            WebhookProcessing {
                inbound: self.inbound.clone(),
                applier: applier.clone(),
            },
            Some(notifier.clone()),
            self.processor.clone(),
        );
        let router = Router::new()
            .merge(health::routes(stores.health(Self::NAME), Some("/webhook")))
            .merge(meta_intake::routes(meta_intake::MetaIntake {
                app_secret: self.meta.app_secret.clone(),
                verify_token: self.meta.verify_token.clone(),
                inbox: inbox.clone(),
            }))
            .merge(payment_intake::routes(payment_intake::PaymentIntake {
                webhook_secrets: self.razorpay_webhook_secrets.clone(),
                inbox,
            }))
            .merge(ops::routes(ops::OpsState {
                pg: stores.pg.clone(),
                token: self.ops_token.clone(),
                notifier,
            }));
        let app = middleware::stack(router, Self::NAME, self.limits);
        let (served, (), ()) = tokio::join!(
            kloyst_http::server::serve(listener, app, shutdown.clone()),
            processor.run(shutdown.clone()),
            async {
                // An intake-only copy (WEBHOOK_PROCESS_CONCURRENCY=0) applies nothing either.
                if self.processor.concurrency > 0 {
                    applier.run(shutdown.clone()).await;
                }
            },
        );
        // The server has answered its last request and dropped the intake's handles: the
        // writer finishes the inserts those requests were waiting for.
        if writer_task.await.is_err() {
            tracing::error!("the inbox writer stopped abnormally");
        }
        served?;
        Ok(())
    }
}
