use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Who posted the webhook (`webhook_inbox.source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Meta,
    Razorpay,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meta => "META",
            Self::Razorpay => "RAZORPAY",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_uppercase().as_str() {
            "META" => Some(Self::Meta),
            "RAZORPAY" => Some(Self::Razorpay),
            _ => None,
        }
    }
}

/// A verified webhook, about to be stored.
#[derive(Clone, Debug)]
pub struct NewWebhook {
    pub source: Source,
    /// The headers that matter (signature, event id, content type), as a JSON object.
    pub headers: Value,
    pub body: Bytes,
    pub body_sha256: [u8; 32],
    /// Duplicate-delivery key: a second webhook with the same key is acknowledged and not
    /// stored again.
    pub dedupe_key: Option<String>,
    pub request_id: Option<String>,
}

impl NewWebhook {
    /// A webhook whose duplicate deliveries are recognised by their exact bytes (Meta re-posts
    /// the same body when it retries).
    pub fn deduplicated_by_body(
        source: Source,
        headers: Value,
        body: Bytes,
        request_id: Option<String>,
    ) -> Self {
        let body_sha256: [u8; 32] = Sha256::digest(&body).into();
        let dedupe_key = format!(
            "{}:sha256:{}",
            source.as_str().to_ascii_lowercase(),
            kloyst_core::page::encode_bytes(&body_sha256)
        );
        Self {
            source,
            headers,
            body,
            body_sha256,
            dedupe_key: Some(dedupe_key),
            request_id,
        }
    }

    /// A webhook with its own duplicate key (e.g. Razorpay's `x-razorpay-event-id`).
    pub fn with_key(
        source: Source,
        headers: Value,
        body: Bytes,
        dedupe_key: Option<String>,
        request_id: Option<String>,
    ) -> Self {
        let body_sha256: [u8; 32] = Sha256::digest(&body).into();
        Self {
            source,
            headers,
            body,
            body_sha256,
            dedupe_key,
            request_id,
        }
    }
}

/// A row claimed for processing.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedRow {
    pub id: i64,
    pub source: String,
    pub raw_body: Vec<u8>,
    pub headers: sqlx::types::Json<Value>,
    /// Including this one.
    pub attempts: i32,
    pub received_at: chrono::DateTime<chrono::Utc>,
}
