//! The campaign API's requests and answers: launch, the campaign with its live counters,
//! its recipients and the message log. Money is `Decimal` (a string in JSON).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::params::Parameters;

/// `POST /v1/campaigns/launch`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    pub name: String,
    pub template_id: Uuid,
    pub list_id: Uuid,
    #[serde(default)]
    pub parameters: Parameters,
    /// Absent, or at most a minute ago: start now. In the future (within 30 days): SCHEDULED.
    #[serde(default)]
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// The launch's answer (202), or the first launch's for a retried Idempotency-Key (200).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Launched {
    pub id: Uuid,
    pub status: String,
    pub name: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// The quote the hold was placed for, as stored with the campaign.
    pub quote: serde_json::Value,
    /// True when this answers a retried Idempotency-Key: nothing new was created.
    #[serde(skip)]
    pub replayed: bool,
}

/// A campaign's funnel (sent includes delivered; delivered includes read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CampaignCounters {
    pub total: i32,
    pub pending: i32,
    pub sent: i32,
    pub delivered: i32,
    pub read: i32,
    pub failed: i32,
    pub unknown: i32,
    /// Excluded at launch (not in `total`).
    pub opted_out: i32,
    /// Members without a priced country, excluded at launch (not in `total`).
    pub skipped: i32,
}

/// A campaign as the API shows it, with its live counters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignView {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub status: String,
    pub template_id: Uuid,
    pub list_id: Option<Uuid>,
    pub parameters: serde_json::Value,
    pub pause_reason: Option<String>,
    pub failure_reason: Option<String>,
    pub counters: CampaignCounters,
    pub currency: String,
    pub quoted_cost: Decimal,
    /// What the sent messages have cost so far.
    pub actual_cost: Decimal,
    /// `(total − pending) / total`, in percent with 2 decimals (100 for an empty campaign).
    pub progress_percent: f64,
    /// Messages per second over the last minute; only measured for one campaign
    /// (`GET /v1/campaigns/:id`) while it is PROCESSING, null in lists.
    pub send_rate: Option<f64>,
    /// `pending / send_rate`, null when nothing is being sent.
    pub eta_seconds: Option<i64>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /v1/campaigns?status=&limit=&cursor=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignFilter {
    #[serde(default)]
    pub status: Option<String>,
    /// BULK, RETRY or SINGLE. Absent: BULK and RETRY (single messages have their own API and
    /// would drown an integration's campaigns).
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET /v1/campaigns/:id/recipients?status=&limit=&cursor=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientFilter {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One frozen recipient of a campaign and where its send stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RecipientView {
    pub seq: i32,
    pub contact_id: Option<Uuid>,
    pub mobile: String,
    pub country: Option<String>,
    pub status: String,
    pub attempts: i16,
    pub wa_message_id: Option<String>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub retryable: Option<bool>,
    pub sending_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// `GET /v1/messages?campaign_id=&status=&limit=&cursor=`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageFilter {
    #[serde(default)]
    pub campaign_id: Option<Uuid>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One message of the vendor's log (outbound sends and inbound messages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MessageView {
    pub id: i64,
    pub campaign_id: Option<Uuid>,
    pub recipient_seq: Option<i32>,
    pub direction: String,
    pub message_type: String,
    pub template_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub recipient: String,
    pub country: Option<String>,
    pub wa_message_id: Option<String>,
    pub status: String,
    pub status_at: Option<DateTime<Utc>>,
    pub pricing_category: Option<String>,
    pub market: Option<String>,
    pub cost: Option<Decimal>,
    pub error_code: Option<i32>,
    pub error_title: Option<String>,
    pub error_message: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What one pass of [`crate::start_due_scheduled`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SchedulerReport {
    /// Due within the grace: now QUEUED, their dispatch job written.
    pub started: Vec<Uuid>,
    /// Due for longer than the grace: FAILED with `SCHEDULE_MISSED`, hold released.
    pub missed: Vec<Uuid>,
}
