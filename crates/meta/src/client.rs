//! The HTTP client for the Cloud API: one pooled `reqwest::Client`, the bearer token kept out of
//! every log line and error, a tracing span per call.

use std::{fmt, sync::Arc, time::Duration};

use kloyst_config::{sections::MetaApiSettings, ConfigError, Env, Secret};
use reqwest::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER};
use serde::Serialize;
use serde_json::Value;
use tracing::{field::Empty, Span};
use url::Url;

use crate::{
    error::{from_error_body, parse_retry_after, MetaError},
    model::{
        parse_send_accepted, CreatedTemplate, NewTemplate, OutgoingMessage, SendAccepted, SendBody,
    },
};

/// Where and how to reach the Cloud API.
#[derive(Clone, Debug)]
pub struct MetaClientSettings {
    pub api_base: Url,
    pub api_version: String,
    pub access_token: Secret<String>,
    /// Total time for one call, connecting and reading the answer included.
    pub timeout: Duration,
}

impl MetaClientSettings {
    /// Used when `META_HTTP_TIMEOUT` is unset.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn from_api(api: &MetaApiSettings, timeout: Duration) -> Self {
        Self {
            api_base: api.api_base.clone(),
            api_version: api.api_version.clone(),
            access_token: api.access_token.clone(),
            timeout,
        }
    }

    /// [`Self::from_api`] with the timeout from `META_HTTP_TIMEOUT` (e.g. `10s`, `800ms`).
    pub fn from_env(api: &MetaApiSettings, env: &Env) -> Result<Self, ConfigError> {
        let timeout = env.duration_or("META_HTTP_TIMEOUT", Self::DEFAULT_TIMEOUT)?;
        Ok(Self::from_api(api, timeout))
    }
}

/// Connecting should be quick; a slow connect must not eat the whole call budget.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Idle keep-alive connections are reused across sends (Meta's edge keeps them ~minutes).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The Cloud API client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct MetaClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_base: Url,
    api_version: String,
    /// `Bearer <token>`, marked sensitive so that reqwest/hyper never print it.
    authorization: HeaderValue,
}

impl fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaClient")
            .field("api_base", &self.inner.api_base.as_str())
            .field("api_version", &self.inner.api_version)
            .finish_non_exhaustive()
    }
}

impl MetaClient {
    // MetaError's shape is the crate's contract, and it is built at most once per HTTP call.
    #[allow(clippy::result_large_err)]
    pub fn new(settings: MetaClientSettings) -> Result<Self, MetaError> {
        let MetaClientSettings {
            api_base,
            api_version,
            access_token,
            timeout,
        } = settings;
        if api_base.cannot_be_a_base() || !matches!(api_base.scheme(), "http" | "https") {
            return Err(MetaError::Config(format!(
                "api_base must be an http(s) URL, got {api_base}"
            )));
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", access_token.expose()))
            .map_err(|_| {
                MetaError::Config("the access token has characters not allowed in a header".into())
            })?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("kloyst-meta/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MetaError::Config(format!("building the http client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api_base,
                api_version,
                authorization,
            }),
        })
    }

    /// POST /{version}/{phone_number_id}/messages
    #[tracing::instrument(
        name = "meta.send",
        skip_all,
        fields(phone_number_id = %phone_number_id, http.status = Empty, wamid = Empty)
    )]
    pub async fn send(
        &self,
        phone_number_id: &str,
        message: &OutgoingMessage,
    ) -> Result<SendAccepted, MetaError> {
        let url = self.endpoint(phone_number_id, "messages")?;
        let raw = self.post_json(url, &SendBody::new(message)).await?;
        let accepted = parse_send_accepted(raw)?;
        Span::current().record("wamid", accepted.wamid.as_str());
        Ok(accepted)
    }

    /// POST /{version}/{waba_id}/message_templates
    #[tracing::instrument(
        name = "meta.create_template",
        skip_all,
        fields(waba_id = %waba_id, template.name = %template.name, http.status = Empty)
    )]
    pub async fn create_template(
        &self,
        waba_id: &str,
        template: &NewTemplate,
    ) -> Result<CreatedTemplate, MetaError> {
        let url = self.endpoint(waba_id, "message_templates")?;
        let raw = self.post_json(url, template).await?;
        serde_json::from_value(raw).map_err(|e| MetaError::Decode(format!("template answer: {e}")))
    }

    /// `{api_base}/{version}/{id}/{edge}`, each segment percent-encoded (an id can never
    /// reach another path).
    #[allow(clippy::result_large_err)] // see `new`
    fn endpoint(&self, id: &str, edge: &str) -> Result<Url, MetaError> {
        if id.is_empty() {
            return Err(MetaError::Config(format!("empty object id for /{edge}")));
        }
        let mut url = self.inner.api_base.clone();
        url.path_segments_mut()
            .map_err(|()| MetaError::Config("api_base cannot be a base URL".into()))?
            .pop_if_empty()
            .extend([self.inner.api_version.as_str(), id, edge]);
        Ok(url)
    }

    /// Sends the body, records the status on the current span, and returns the 2xx JSON or
    /// the error Meta answered.
    async fn post_json<B: Serialize + ?Sized>(
        &self,
        url: Url,
        body: &B,
    ) -> Result<Value, MetaError> {
        let response = self
            .inner
            .http
            .post(url)
            .header(AUTHORIZATION, self.inner.authorization.clone())
            .json(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        Span::current().record("http.status", status.as_u16());
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            let error = from_error_body(status.as_u16(), &bytes, retry_after);
            tracing::debug!(meta.code = ?error.code(), class = ?error.class(), "meta refused the call");
            return Err(error);
        }
        serde_json::from_slice(&bytes).map_err(|e| MetaError::Decode(format!("not JSON: {e}")))
    }
}

/// A failure before Meta's answer was complete. reqwest's text names the URL, which holds
/// only ids (the token travels in a header).
fn transport_error(error: reqwest::Error) -> MetaError {
    if error.is_timeout() {
        return MetaError::Timeout;
    }
    if error.is_builder() {
        return MetaError::Config(error.to_string());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    MetaError::Connect(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(base: &str) -> MetaClientSettings {
        MetaClientSettings {
            api_base: Url::parse(base).unwrap(),
            api_version: "v23.0".into(),
            access_token: Secret::new("EAAG-super-secret-token".into()),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn endpoints_append_version_id_and_edge_to_the_base_path() {
        let client = MetaClient::new(settings("https://graph.facebook.com")).unwrap();
        assert_eq!(
            client
                .endpoint("106540352242922", "messages")
                .unwrap()
                .as_str(),
            "https://graph.facebook.com/v23.0/106540352242922/messages"
        );
        let prefixed = MetaClient::new(settings("http://127.0.0.1:9/graph/")).unwrap();
        assert_eq!(
            prefixed
                .endpoint("42", "message_templates")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/graph/v23.0/42/message_templates"
        );
        // An id cannot escape its segment.
        assert_eq!(
            client.endpoint("1/../x?y", "messages").unwrap().path(),
            "/v23.0/1%2F..%2Fx%3Fy/messages"
        );
        assert!(matches!(
            client.endpoint("", "messages"),
            Err(MetaError::Config(_))
        ));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let settings = settings("https://graph.facebook.com");
        assert!(!format!("{settings:?}").contains("super-secret"));
        let client = MetaClient::new(settings).unwrap();
        assert!(!format!("{client:?}").contains("super-secret"));
        assert!(!format!("{:?}", client.inner.authorization).contains("super-secret"));
    }

    #[test]
    fn bad_settings_are_config_errors_without_the_token() {
        let mut bad_token = settings("https://graph.facebook.com");
        bad_token.access_token = Secret::new("secret\nvalue".into());
        match MetaClient::new(bad_token) {
            Err(MetaError::Config(text)) => assert!(!text.contains("secret\nvalue")),
            other => panic!("expected Config, got {other:?}"),
        }
        assert!(matches!(
            MetaClient::new(settings("mailto:someone@example.com")),
            Err(MetaError::Config(_))
        ));
    }

    #[test]
    fn timeout_comes_from_meta_http_timeout_or_defaults_to_ten_seconds() {
        let env = Env::from_pairs([
            ("META_ACCESS_TOKEN", "t"),
            ("META_WABA_ID", "1"),
            ("META_PHONE_NUMBER_ID", "2"),
        ]);
        let api = MetaApiSettings::from_env(&env).unwrap();
        let default = MetaClientSettings::from_env(&api, &env).unwrap();
        assert_eq!(default.timeout, Duration::from_secs(10));
        let set =
            MetaClientSettings::from_env(&api, &env.with("META_HTTP_TIMEOUT", "750ms")).unwrap();
        assert_eq!(set.timeout, Duration::from_millis(750));
        assert_eq!(set.api_version, api.api_version);
        assert_eq!(set.access_token.expose(), "t");
    }
}
