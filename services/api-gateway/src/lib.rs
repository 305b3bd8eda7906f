//! api-gateway: the REST API (`/v1/*`) for the dashboard and integrations.
//!
//! Handlers parse and answer; the rules live in the domain crates.

pub mod auth;
mod hardening;
pub mod meta;
mod routes;
mod state;

use std::time::Duration;

use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::{Extension, Router};
use kloyst_config::sections::{self, CommonSettings, DataKey, RazorpaySettings};
use kloyst_config::{ConfigError, Env};
use kloyst_contacts::{Contacts, ContactsSettings};
use kloyst_http::health::{self, HealthState};
use kloyst_http::middleware::{self, Limits};
use kloyst_http::service::{BoxError, Service, Stores};
use kloyst_identity::{Caller, Identity, IdentitySettings, Principal};
use kloyst_payments::{RazorpayClient, RechargeSettings, Recharges};
use kloyst_ratelimit::{by_client_ip, RateLimitLayer, RateLimitSettings, RateLimiter};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Configuration of the api-gateway (see `.env.example`).
#[derive(Clone, Debug)]
pub struct ApiGateway {
    pub common: CommonSettings,
    /// `API_PORT`, default 3000.
    pub port: u16,
    /// Tokens (`JWT_*`), OTP and login limits (`OTP_*`, `LOGIN_*`).
    pub identity: IdentitySettings,
    /// `IMPORT_MAX_BYTES`, `IMPORT_CHUNK_ROWS`.
    pub contacts: ContactsSettings,
    pub data_key: DataKey,
    /// `RATE_LIMIT_AUTH_PER_IP`, `RATE_LIMIT_API_PER_VENDOR`, `TRUSTED_PROXIES`.
    pub rate_limits: RateLimitSettings,
    /// `RAZORPAY_API_BASE`, `RAZORPAY_KEY_ID`, `RAZORPAY_KEY_SECRET`.
    pub razorpay: RazorpaySettings,
    /// `RECHARGE_MIN_AMOUNT`, `RECHARGE_MAX_AMOUNT`.
    pub recharge: RechargeSettings,
    /// `CORS_ALLOWED_ORIGINS`.
    pub cors_origins: Vec<HeaderValue>,
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
            identity: IdentitySettings::from_env(env)?,
            contacts: ContactsSettings::from_env(env)?,
            data_key: DataKey::from_env(env)?,
            rate_limits: RateLimitSettings::from_env(env)?,
            razorpay: RazorpaySettings::from_env(env)?,
            recharge: RechargeSettings::from_env(env)?,
            cors_origins: hardening::cors_origins(env)?,
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
        let razorpay = RazorpayClient::new(&self.razorpay)?;
        let state = AppState {
            recharges: Recharges::new(
                stores.pg.clone(),
                razorpay,
                self.razorpay.key_secret.clone(),
                self.recharge,
            ),
            identity: Identity::new(stores.pg.clone(), stores.redis.clone(), self.identity),
            contacts: Contacts::new(stores.pg.clone(), self.contacts),
            limiter: RateLimiter::new(stores.redis.clone(), self.common.redis.key_prefix.clone()),
            templates: kloyst_templates::Templates::new(stores.pg.clone()),
            pricing: kloyst_pricing::Pricing::new(stores.pg.clone()),
            quotes: kloyst_campaigns::Quotes::new(
                stores.pg.clone(),
                kloyst_pricing::Pricing::new(stores.pg.clone()),
            ),
            campaigns: kloyst_campaigns::Campaigns::new(
                stores.pg.clone(),
                kloyst_pricing::Pricing::new(stores.pg.clone()),
            ),
            wallet: kloyst_billing::WalletReader::new(stores.pg.clone()),
        };
        let app = router(state, stores.health(Self::NAME), &self.rate_limits);
        let app = middleware::stack(app, Self::NAME, self.limits)
            .layer(hardening::cors(self.cors_origins));
        let app = hardening::security_headers()
            .into_iter()
            .fold(app, |app, layer| app.layer(layer));
        kloyst_http::server::serve(listener, app, shutdown).await?;
        Ok(())
    }
}

fn router(state: AppState, health: HealthState, limits: &RateLimitSettings) -> Router {
    // Keyed on the caller's vendor: its users and its API keys share one budget.
    let per_vendor = |parts: &Parts| {
        let extensions = &parts.extensions;
        extensions
            .get::<Caller>()
            .map(Caller::vendor_id)
            .or_else(|| extensions.get::<Principal>().map(|p| p.vendor_id))
            .map(|vendor| vendor.to_string())
    };
    // Public: limited per client IP.
    let public = routes::auth::routes().layer(RateLimitLayer::new(
        state.limiter.clone(),
        "auth",
        limits.auth_per_ip,
        by_client_ip(limits.trusted()),
    ));
    // Authenticated: `require_user` runs first (outer layer), then the per-vendor limit.
    let private = Router::new()
        .merge(routes::users::routes())
        .merge(routes::vendor::routes())
        .merge(routes::contacts::routes())
        .merge(routes::imports::routes())
        .merge(routes::templates::routes())
        .merge(routes::pricing::routes())
        .merge(routes::wallet::routes())
        .merge(routes::campaigns::routes())
        .merge(routes::messages::routes())
        .merge(routes::api_keys::routes())
        .layer(RateLimitLayer::new(
            state.limiter.clone(),
            "api",
            limits.api_per_vendor,
            per_vendor,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_user,
        ));
    Router::new()
        .merge(public)
        .merge(private)
        .with_state(state)
        .merge(health::routes(health, Some("/v1")))
        .layer(Extension(limits.trusted()))
}
