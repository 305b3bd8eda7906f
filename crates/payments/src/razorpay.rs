//! The Razorpay Orders API client: one pooled `reqwest::Client`, HTTP Basic auth with the key
//! id and secret (never in a log line, an error or `Debug`).

use std::{fmt, time::Duration};

use kloyst_config::sections::RazorpaySettings;
use kloyst_config::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

/// Creating an order is one small call; a slow provider must not hold a request for long.
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `POST /v1/orders`.
#[derive(Clone, Debug, Serialize)]
pub struct NewOrder {
    /// In the currency's smallest unit (paise), at least 100.
    pub amount: i64,
    pub currency: String,
    /// At most 40 characters, unique per order.
    pub receipt: String,
    /// At most 15 pairs: we carry our vendor and order ids, checked again on the webhook.
    pub notes: Map<String, Value>,
}

/// The fields of Razorpay's order we use.
#[derive(Clone, Debug, Deserialize)]
pub struct RazorpayOrder {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
}

/// Why a call failed. Nothing here carries the key secret.
#[derive(Debug, thiserror::Error)]
pub enum RazorpayError {
    /// Razorpay answered with its error shape (`{"error": {code, description, field, …}}`).
    #[error("Razorpay refused the call ({status}): {code}: {description}")]
    Api {
        status: u16,
        code: String,
        description: String,
        field: Option<String>,
    },
    #[error("Razorpay did not answer in time")]
    Timeout,
    #[error("Razorpay could not be reached: {0}")]
    Unreachable(String),
    #[error("Razorpay's answer could not be read: {0}")]
    Decode(String),
}

impl RazorpayError {
    /// Worth retrying later (the provider is down or overloaded), as opposed to a refusal of
    /// what we sent.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            Self::Timeout | Self::Unreachable(_) => true,
            Self::Decode(_) => false,
        }
    }
}

/// The Orders API client. Cheap to clone.
#[derive(Clone)]
pub struct RazorpayClient {
    http: reqwest::Client,
    orders_url: Url,
    key_id: String,
    key_secret: Secret<String>,
}

impl fmt::Debug for RazorpayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RazorpayClient")
            .field("orders_url", &self.orders_url.as_str())
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl RazorpayClient {
    pub fn new(settings: &RazorpaySettings) -> Result<Self, RazorpayError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| RazorpayError::Unreachable(e.to_string()))?;
        let orders_url = settings
            .api_base
            .join("v1/orders")
            .map_err(|e| RazorpayError::Unreachable(format!("RAZORPAY_API_BASE: {e}")))?;
        Ok(Self {
            http,
            orders_url,
            key_id: settings.key_id.clone(),
            key_secret: settings.key_secret.clone(),
        })
    }

    /// The public key id the browser's checkout needs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `POST /v1/orders`.
    pub async fn create_order(&self, order: &NewOrder) -> Result<RazorpayOrder, RazorpayError> {
        let response = self
            .http
            .post(self.orders_url.clone())
            // reqwest marks the Authorization header sensitive (never printed).
            .basic_auth(&self.key_id, Some(self.key_secret.expose()))
            .json(order)
            .send()
            .await
            .map_err(from_reqwest)?;
        let status = response.status();
        let body = response.bytes().await.map_err(from_reqwest)?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &body));
        }
        serde_json::from_slice(&body).map_err(|e| RazorpayError::Decode(e.to_string()))
    }
}

fn from_reqwest(error: reqwest::Error) -> RazorpayError {
    if error.is_timeout() {
        RazorpayError::Timeout
    } else {
        // Without the URL: it is ours and harmless, but keep errors short.
        RazorpayError::Unreachable(error.without_url().to_string())
    }
}

/// Razorpay's error shape, or whatever came back when it is not that.
fn api_error(status: u16, body: &[u8]) -> RazorpayError {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        field: Option<String>,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => RazorpayError::Api {
            status,
            code: error.code.unwrap_or_else(|| "UNKNOWN".to_owned()),
            description: error.description.unwrap_or_default(),
            field: error.field,
        },
        Err(_) => RazorpayError::Api {
            status,
            code: "UNKNOWN".to_owned(),
            description: String::from_utf8_lossy(body).chars().take(200).collect(),
            field: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn razorpay_error_bodies_are_read_and_others_kept_short() {
        let body = br#"{"error":{"code":"BAD_REQUEST_ERROR","description":"The amount must be at least INR 1.00","source":"business","step":"payment_initiation","reason":"input_validation_failed","metadata":{},"field":"amount"}}"#;
        match api_error(400, body) {
            RazorpayError::Api {
                status,
                code,
                field,
                ..
            } => {
                assert_eq!(status, 400);
                assert_eq!(code, "BAD_REQUEST_ERROR");
                assert_eq!(field.as_deref(), Some("amount"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let html = "<html>".repeat(100);
        match api_error(502, html.as_bytes()) {
            RazorpayError::Api { description, .. } => assert_eq!(description.len(), 200),
            other => panic!("unexpected {other:?}"),
        }
        assert!(api_error(502, b"").is_transient());
        assert!(!api_error(400, body).is_transient());
    }
}
