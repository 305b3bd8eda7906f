//! What a range job reads: the campaign it sends for, and batches of claimed recipients.

use kloyst_campaigns::params::Parameters;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{DispatchError, Dispatcher};

/// The campaign as a range job needs it, read once per job.
#[derive(Clone, Debug)]
pub(crate) struct CampaignContext {
    pub campaign_id: Uuid,
    pub vendor_id: Uuid,
    pub status: String,
    pub template_id: Uuid,
    pub template_status: String,
    pub meta_name: String,
    pub language: String,
    pub category: String,
    /// Meta's id of the sending number.
    pub phone_number_id: String,
    /// `None` when `campaigns.parameters` does not parse: every recipient fails PARAMS.
    pub parameters: Option<Parameters>,
}

#[derive(sqlx::FromRow)]
struct ContextRow {
    status: String,
    template_id: Uuid,
    template_status: String,
    meta_name: String,
    language: String,
    category: String,
    phone_number_id: Option<String>,
    parameters: Value,
}

/// One recipient marked SENDING by a claim.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct Claimed {
    pub seq: i32,
    pub contact_id: Option<Uuid>,
    pub mobile: String,
    pub country: Option<String>,
    /// Explicit values (single messages): a JSON array of strings.
    pub params: Option<Value>,
    /// Attempts including this one.
    pub attempts: i16,
    /// The contact's attributes; `None` when the contact was deleted (fallbacks apply).
    pub attributes: Option<Value>,
    /// The contact opted out after the launch froze the list (a STOP mid-campaign).
    pub opted_out: Option<bool>,
}

impl Claimed {
    /// The body parameters, or `None` when they cannot be rendered.
    pub fn body_parameters(&self, parameters: Option<&Parameters>) -> Option<Vec<String>> {
        if let Some(Value::Array(values)) = &self.params {
            return values
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect();
        }
        let empty = Map::new();
        let attributes = match &self.attributes {
            Some(Value::Object(map)) => map,
            _ => &empty,
        };
        parameters?.render(attributes)
    }
}

impl Dispatcher {
    pub(crate) async fn campaign_context(
        &self,
        campaign_id: Uuid,
        vendor_id: Uuid,
    ) -> Result<Option<CampaignContext>, DispatchError> {
        let row: Option<ContextRow> = sqlx::query_as(
            "SELECT c.status, c.template_id, t.status AS template_status, t.meta_name, t.language, \
                    coalesce(t.meta_category, t.category) AS category, \
                    p.phone_number_id, c.parameters \
             FROM campaigns c \
             JOIN templates t ON t.vendor_id = c.vendor_id AND t.id = c.template_id \
             LEFT JOIN phone_numbers p ON p.id = c.phone_number_id \
             WHERE c.id = $1 AND c.vendor_id = $2",
        )
        .bind(campaign_id)
        .bind(vendor_id)
        .fetch_optional(self.pg())
        .await?;
        Ok(row.map(|row| {
            let parameters = match serde_json::from_value::<Parameters>(row.parameters) {
                Ok(parameters) => Some(parameters),
                Err(error) => {
                    tracing::error!(campaign.id = %campaign_id, %error, "campaign parameters do not parse");
                    None
                }
            };
            CampaignContext {
                campaign_id,
                vendor_id,
                status: row.status,
                template_id: row.template_id,
                template_status: row.template_status,
                meta_name: row.meta_name,
                language: row.language,
                category: row.category,
                phone_number_id: row
                    .phone_number_id
                    .unwrap_or_else(|| self.settings().default_phone_number_id.clone()),
                parameters,
            }
        }))
    }

    pub(crate) async fn campaign_status(
        &self,
        campaign_id: Uuid,
    ) -> Result<Option<String>, DispatchError> {
        Ok(
            sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1")
                .bind(campaign_id)
                .fetch_optional(self.pg())
                .await?,
        )
    }

    /// Marks up to `limit` due PENDING recipients of `from..=to` SENDING with `attempt_id`, in
    /// one statement committed on its own: the mark is durable before any Meta call, so a
    /// crash can never lead to a blind resend. Sorted by seq.
    pub(crate) async fn claim(
        &self,
        campaign_id: Uuid,
        from: i32,
        to: i32,
        limit: i64,
        attempt_id: Uuid,
    ) -> Result<Vec<Claimed>, DispatchError> {
        let mut claimed: Vec<Claimed> = sqlx::query_as(
            "UPDATE campaign_recipients r \
             SET status = 'SENDING', attempt_id = $5, sending_at = now(), attempts = r.attempts + 1 \
             WHERE (r.campaign_id, r.seq) IN ( \
                 SELECT campaign_id, seq FROM campaign_recipients \
                 WHERE campaign_id = $1 AND seq BETWEEN $2 AND $3 AND status = 'PENDING' \
                   AND (next_attempt_at IS NULL OR next_attempt_at <= now()) \
                 ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING r.seq, r.contact_id, r.mobile, r.country, r.params, r.attempts, \
                 (SELECT c.attributes FROM contacts c \
                  WHERE c.vendor_id = r.vendor_id AND c.id = r.contact_id) AS attributes, \
                 (SELECT c.opted_out FROM contacts c \
                  WHERE c.vendor_id = r.vendor_id AND c.id = r.contact_id) AS opted_out",
        )
        .bind(campaign_id)
        .bind(from)
        .bind(to)
        .bind(limit)
        .bind(attempt_id)
        .fetch_all(self.pg())
        .await?;
        claimed.sort_by_key(|c| c.seq);
        Ok(claimed)
    }

    /// The PENDING rows left in `from..=to`: the lowest seq due now, the lowest at all, and
    /// when the next one not yet due becomes due.
    pub(crate) async fn pending_in(
        &self,
        campaign_id: Uuid,
        from: i32,
        to: i32,
    ) -> Result<PendingLeft, DispatchError> {
        let (lowest_due, lowest, next_due_in_ms): (Option<i32>, Option<i32>, Option<f64>) =
            sqlx::query_as(
                "SELECT min(seq) FILTER (WHERE next_attempt_at IS NULL OR next_attempt_at <= now()), \
                        min(seq), \
                        (extract(epoch FROM min(next_attempt_at) - now()) * 1000)::float8 \
                 FROM campaign_recipients \
                 WHERE campaign_id = $1 AND seq BETWEEN $2 AND $3 AND status = 'PENDING'",
            )
            .bind(campaign_id)
            .bind(from)
            .bind(to)
            .fetch_one(self.pg())
            .await?;
        Ok(PendingLeft {
            lowest_due,
            lowest,
            next_due_in_ms,
        })
    }
}

pub(crate) struct PendingLeft {
    pub lowest_due: Option<i32>,
    pub lowest: Option<i32>,
    pub next_due_in_ms: Option<f64>,
}
