//! The read side: campaigns with live counters, their recipients and the message log. Any
//! role of the vendor. Each call is one tenant transaction (RLS on the caller's vendor,
//! session checked) whose queries also filter by the token's vendor, so another vendor's rows
//! are never seen, even with its ids or cursors.

use kloyst_core::page::{self, Page, PageRequest};
use kloyst_core::FieldError;
use kloyst_identity::{Caller, Principal};
use uuid::Uuid;

use crate::campaign_repo::{self, CampaignRow, CAMPAIGN_COLUMNS};
use crate::error::CampaignError;
use crate::views::{
    CampaignFilter, CampaignView, MessageFilter, MessageView, RecipientFilter, RecipientView,
};
use crate::Campaigns;

const CAMPAIGN_STATUSES: [&str; 8] = [
    "DRAFT",
    "SCHEDULED",
    "QUEUED",
    "PROCESSING",
    "PAUSED",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
];
const CAMPAIGN_KINDS: [&str; 3] = ["BULK", "RETRY", "SINGLE"];
const RECIPIENT_STATUSES: [&str; 7] = [
    "PENDING",
    "SENDING",
    "SENT",
    "FAILED",
    "UNKNOWN",
    "SKIPPED",
    "CANCELLED",
];
const MESSAGE_STATUSES: [&str; 6] = ["PENDING", "SENT", "DELIVERED", "READ", "FAILED", "RECEIVED"];
/// The window the send rate is measured over.
const RATE_WINDOW_SECS: i32 = 60;

impl Campaigns {
    /// One campaign with its live counters, progress, send rate (PROCESSING only) and ETA.
    pub async fn get(&self, who: &Principal, id: Uuid) -> Result<CampaignView, CampaignError> {
        let mut tx = self.begin_for(who).await?;
        let row = campaign_repo::find(&mut tx, who.vendor_id, id)
            .await?
            .ok_or(CampaignError::NotFound)?;
        let sent_last_window = if row.status == "PROCESSING" {
            let recent: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM campaign_recipients
                  WHERE campaign_id = $1 AND vendor_id = $2 AND sent_at IS NOT NULL
                    AND sent_at > now() - make_interval(secs => $3)",
            )
            .bind(id)
            .bind(who.vendor_id.as_uuid())
            .bind(RATE_WINDOW_SECS)
            .fetch_one(&mut *tx)
            .await?;
            Some((recent, RATE_WINDOW_SECS))
        } else {
            None
        };
        kloyst_db::end_read_only(tx);
        Ok(row.into_view(sent_last_window))
    }

    /// The vendor's campaigns, newest first, optionally of one status.
    pub async fn list(
        &self,
        who: &Principal,
        filter: CampaignFilter,
    ) -> Result<Page<CampaignView>, CampaignError> {
        let mut errors = Vec::new();
        let status = checked_one_of("status", filter.status, &CAMPAIGN_STATUSES, &mut errors);
        let kinds: Vec<String> =
            match checked_one_of("kind", filter.kind, &CAMPAIGN_KINDS, &mut errors) {
                Some(kind) => vec![kind],
                None => vec!["BULK".to_owned(), "RETRY".to_owned()],
            };
        let limit = checked_limit(filter.limit, &mut errors);
        let after = match filter.cursor.as_deref() {
            None => None,
            Some(cursor) => page::decode_time_id(cursor)
                .map_err(|e| errors.push(e))
                .ok(),
        };
        if !errors.is_empty() {
            return Err(CampaignError::Invalid(errors));
        }
        let mut tx = self.begin_for(who).await?;
        let mut rows: Vec<CampaignRow> = sqlx::query_as(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns
              WHERE vendor_id = $1
                AND ($2::text IS NULL OR status = $2)
                AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
                AND kind = ANY($6)
              ORDER BY created_at DESC, id DESC
              LIMIT $5"
        ))
        .bind(who.vendor_id.as_uuid())
        .bind(status)
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(limit) + 1)
        .bind(&kinds)
        .fetch_all(&mut *tx)
        .await?;
        kloyst_db::end_read_only(tx);
        let next_cursor = next(&mut rows, limit, |row| {
            page::encode_time_id(row.created_at, row.id)
        });
        Ok(Page {
            data: rows.into_iter().map(|row| row.into_view(None)).collect(),
            next_cursor,
        })
    }

    /// A campaign's recipients in `seq` order, optionally of one status, with their errors.
    pub async fn recipients(
        &self,
        who: &Principal,
        id: Uuid,
        filter: RecipientFilter,
    ) -> Result<Page<RecipientView>, CampaignError> {
        let mut errors = Vec::new();
        let status = checked_one_of("status", filter.status, &RECIPIENT_STATUSES, &mut errors);
        let limit = checked_limit(filter.limit, &mut errors);
        let after = match filter.cursor.as_deref() {
            None => None,
            Some(cursor) => decode_i32(cursor).map_err(|e| errors.push(e)).ok(),
        };
        if !errors.is_empty() {
            return Err(CampaignError::Invalid(errors));
        }
        let mut tx = self.begin_for(who).await?;
        let exists: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM campaigns WHERE vendor_id = $1 AND id = $2")
                .bind(who.vendor_id.as_uuid())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(CampaignError::NotFound);
        }
        let mut rows: Vec<RecipientView> = sqlx::query_as(
            "SELECT seq, contact_id, mobile, country, status, attempts, wa_message_id, error_code,
                    error_message, retryable, sending_at, sent_at, failed_at
               FROM campaign_recipients
              WHERE campaign_id = $1 AND vendor_id = $2
                AND ($3::text IS NULL OR status = $3)
                AND seq > $4
              ORDER BY seq
              LIMIT $5",
        )
        .bind(id)
        .bind(who.vendor_id.as_uuid())
        .bind(status)
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *tx)
        .await?;
        kloyst_db::end_read_only(tx);
        let next_cursor = next(&mut rows, limit, |row| {
            page::encode_bytes(&row.seq.to_be_bytes())
        });
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }

    /// The vendor's message log, newest first, by campaign and status.
    pub async fn messages(
        &self,
        who: &Caller,
        filter: MessageFilter,
    ) -> Result<Page<MessageView>, CampaignError> {
        let mut errors = Vec::new();
        let status = checked_one_of("status", filter.status, &MESSAGE_STATUSES, &mut errors);
        let limit = checked_limit(filter.limit, &mut errors);
        let before = match filter.cursor.as_deref() {
            None => None,
            Some(cursor) => decode_i64(cursor).map_err(|e| errors.push(e)).ok(),
        };
        if !errors.is_empty() {
            return Err(CampaignError::Invalid(errors));
        }
        let mut tx = who.begin(&self.pg).await?;
        let mut rows: Vec<MessageView> = sqlx::query_as(
            "SELECT id, campaign_id, recipient_seq, direction, message_type, template_id,
                    contact_id, recipient, country, wa_message_id, status, status_at,
                    pricing_category, market, cost, error_code, error_title, error_message,
                    sent_at, delivered_at, read_at, failed_at, received_at, created_at
               FROM message_logs
              WHERE vendor_id = $1
                AND ($2::uuid IS NULL OR campaign_id = $2)
                AND ($3::text IS NULL OR status = $3)
                AND ($4::bigint IS NULL OR id < $4)
              ORDER BY id DESC
              LIMIT $5",
        )
        .bind(who.vendor_id().as_uuid())
        .bind(filter.campaign_id)
        .bind(status)
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *tx)
        .await?;
        kloyst_db::end_read_only(tx);
        let next_cursor = next(&mut rows, limit, |row| {
            page::encode_bytes(&row.id.to_be_bytes())
        });
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }
}

/// Keeps `limit` rows (one more was fetched to know whether a next page exists) and returns
/// the cursor of the last kept row when there is a next page.
fn next<T>(rows: &mut Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Option<String> {
    let limit = limit as usize;
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor)
    } else {
        None
    }
}

fn checked_limit(limit: Option<u32>, errors: &mut Vec<FieldError>) -> u32 {
    PageRequest {
        limit,
        cursor: None,
    }
    .limit()
    .map_err(|e| errors.push(e))
    .unwrap_or(page::DEFAULT_LIMIT)
}

/// An upper-cased status among `allowed`, else a field error.
/// `value` (case-insensitive) if it is one of `allowed`, else an error on `field`.
fn checked_one_of(
    field: &str,
    value: Option<String>,
    allowed: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let value = value?.trim().to_ascii_uppercase();
    if allowed.contains(&value.as_str()) {
        Some(value)
    } else {
        errors.push(FieldError::new(
            field,
            "unknown",
            format!("one of {}", allowed.join(", ")),
        ));
        None
    }
}

fn decode_i32(cursor: &str) -> Result<i32, FieldError> {
    let bytes = page::decode_bytes(cursor).ok_or_else(page::invalid_cursor)?;
    let bytes: [u8; 4] = bytes.try_into().map_err(|_| page::invalid_cursor())?;
    Ok(i32::from_be_bytes(bytes))
}

fn decode_i64(cursor: &str) -> Result<i64, FieldError> {
    let bytes = page::decode_bytes(cursor).ok_or_else(page::invalid_cursor)?;
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| page::invalid_cursor())?;
    Ok(i64::from_be_bytes(bytes))
}
