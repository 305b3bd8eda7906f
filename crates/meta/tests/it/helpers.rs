//! The simulator on a random port, a client pointed at it, and tiny stand-in servers.

use std::time::Duration;

use kloyst_config::Secret;
use kloyst_meta::{
    MessageContent, MetaClient, MetaClientSettings, OutgoingMessage, TemplateMessage,
};
use meta_sim::{Behaviour, SimSettings};
use serde_json::json;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use url::Url;

pub const TOKEN: &str = "sim-access-token";
pub const WABA_ID: &str = "1001";
pub const PHONE_NUMBER_ID: &str = "2002";
pub const API_VERSION: &str = "v23.0";
/// A template the simulator knows as APPROVED once seeded.
pub const TEMPLATE: &str = "order_confirmation";

/// A running simulator; stopped when dropped.
pub struct Sim {
    pub base: Url,
    shutdown: CancellationToken,
    _task: JoinHandle<()>,
}

impl Sim {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let settings = SimSettings {
            access_token: TOKEN.to_owned(),
            app_secret: "sim-app-secret".to_owned(),
            waba_id: WABA_ID.to_owned(),
            phone_number_id: PHONE_NUMBER_ID.to_owned(),
            display_phone_number: "15550001234".to_owned(),
            webhook_url: None,
            behaviour,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                let _ = meta_sim::serve(settings, listener, shutdown).await;
            }
        });
        Self {
            base,
            shutdown,
            _task: task,
        }
    }

    /// Starts with the default behaviour and [`TEMPLATE`] approved in `en_US`.
    pub async fn with_template(behaviour: Behaviour) -> Self {
        let sim = Self::start(behaviour).await;
        sim.seed_template(TEMPLATE, "en_US").await;
        sim
    }

    pub async fn seed_template(&self, name: &str, language: &str) {
        let response = reqwest::Client::new()
            .post(self.base.join("/_sim/templates").unwrap())
            .json(&json!({
                "name": name, "language": language, "category": "UTILITY", "status": "APPROVED"
            }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "seeding a template: {}",
            response.text().await.unwrap()
        );
    }

    pub fn client(&self) -> MetaClient {
        client_for(self.base.clone(), TOKEN, Duration::from_secs(5))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn client_for(api_base: Url, token: &str, timeout: Duration) -> MetaClient {
    MetaClient::new(MetaClientSettings {
        api_base,
        api_version: API_VERSION.to_owned(),
        access_token: Secret::new(token.to_owned()),
        timeout,
    })
    .unwrap()
}

pub fn template_to(to: &str, name: &str, parameters: &[&str]) -> OutgoingMessage {
    OutgoingMessage {
        to: to.to_owned(),
        content: MessageContent::Template(TemplateMessage {
            name: name.to_owned(),
            language: "en_US".to_owned(),
            body_parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
        }),
        biz_opaque_callback_data: Some("message-log:1".to_owned()),
    }
}

/// A server that answers every request with the same status, headers and body; for the
/// answers the simulator never gives (a proxy's HTML, a 2xx without an id, `Retry-After`).
pub async fn canned_server(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> (Url, JoinHandle<()>) {
    use axum::{http::StatusCode, response::IntoResponse, Router};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let status = StatusCode::from_u16(status).unwrap();
    let app = Router::new().fallback(move || async move {
        let mut response = (status, body).into_response();
        for (name, value) in headers {
            response
                .headers_mut()
                .insert(*name, axum::http::HeaderValue::from_static(value));
        }
        response.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/json"),
        );
        response
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}
