//! The SQL of inbound processing. Every function runs on the caller's connection (the webhook
//! processor's transaction, as the system owner: no row-level security applies).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Tags the `contact_changes` rows written in this transaction with the webhook worker and
/// the inbox row, unless the caller already said who it is.
pub(crate) async fn tag_contact_changes(
    conn: &mut PgConnection,
    inbox_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('app.actor', COALESCE(app_setting('actor'), 'system:webhook-worker'), true), \
                set_config('app.request_id', COALESCE(app_setting('request_id'), $1), true)",
    )
    .bind(format!("webhook_inbox:{inbox_id}"))
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a message with this wamid is already logged (either direction).
pub(crate) async fn wamid_logged(
    conn: &mut PgConnection,
    wamid: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM message_logs WHERE wa_message_id = $1)")
        .bind(wamid)
        .fetch_one(conn)
        .await
}

/// The vendor of the latest OUTBOUND message to `mobile` (or to `wa_id`, Meta's spelling of
/// the same number). Each branch is one probe of `message_logs_outbound_recipient_idx`.
pub(crate) async fn last_outbound_vendor(
    conn: &mut PgConnection,
    mobile: &str,
    wa_id: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT vendor_id FROM ( \
             (SELECT vendor_id, id FROM message_logs \
              WHERE direction = 'OUTBOUND' AND recipient = $1 ORDER BY id DESC LIMIT 1) \
             UNION ALL \
             (SELECT vendor_id, id FROM message_logs \
              WHERE direction = 'OUTBOUND' AND recipient = $2 ORDER BY id DESC LIMIT 1) \
         ) latest ORDER BY id DESC LIMIT 1",
    )
    .bind(mobile)
    .bind(wa_id)
    .fetch_optional(conn)
    .await
}

/// A contact's consent, read under a row lock for the rest of the transaction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LockedContact {
    pub id: Uuid,
    pub opted_out: bool,
    pub opt_state_at: Option<DateTime<Utc>>,
}

type ContactRow = (Uuid, bool, Option<DateTime<Utc>>);

/// Creates the vendor's contact for `mobile` if it is new (with `name` when given); on an
/// existing contact only fills a missing name or country. Returns it locked.
pub(crate) async fn upsert_contact(
    conn: &mut PgConnection,
    vendor: Uuid,
    mobile: &str,
    country: Option<&str>,
    name: Option<&str>,
) -> Result<LockedContact, sqlx::Error> {
    let written: Option<ContactRow> = sqlx::query_as(
        "INSERT INTO contacts AS c (vendor_id, mobile, country, attributes) \
         VALUES ($1, $2, $3, CASE WHEN $4::text IS NULL THEN '{}'::jsonb \
                                  ELSE jsonb_build_object('name', $4::text) END) \
         ON CONFLICT (vendor_id, mobile) DO UPDATE \
         SET attributes = CASE WHEN c.name IS NULL AND $4::text IS NOT NULL \
                               THEN c.attributes || jsonb_build_object('name', $4::text) \
                               ELSE c.attributes END, \
             country = COALESCE(c.country, EXCLUDED.country) \
         WHERE (c.name IS NULL AND $4::text IS NOT NULL) \
            OR (c.country IS NULL AND EXCLUDED.country IS NOT NULL) \
         RETURNING c.id, c.opted_out, c.opt_state_at",
    )
    .bind(vendor)
    .bind(mobile)
    .bind(country)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    // Nothing to fill in: the conflicting row was locked but not returned.
    let (id, opted_out, opt_state_at) = match written {
        Some(row) => row,
        None => {
            sqlx::query_as(
                "SELECT id, opted_out, opt_state_at FROM contacts \
                 WHERE vendor_id = $1 AND mobile = $2 FOR UPDATE",
            )
            .bind(vendor)
            .bind(mobile)
            .fetch_one(&mut *conn)
            .await?
        }
    };
    Ok(LockedContact {
        id,
        opted_out,
        opt_state_at,
    })
}

/// An INBOUND row of `message_logs`.
pub(crate) struct NewInboundLog<'a> {
    pub vendor: Uuid,
    pub message_type: &'a str,
    pub contact_id: Option<Uuid>,
    pub phone_number_id: Option<&'a str>,
    pub recipient: &'a str,
    pub country: Option<&'a str>,
    pub wamid: &'a str,
    pub body: Value,
    pub received_at: DateTime<Utc>,
}

/// Logs the message; `None` when its wamid is already logged (a duplicate delivery).
pub(crate) async fn insert_inbound_log(
    conn: &mut PgConnection,
    log: &NewInboundLog<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO message_logs (vendor_id, direction, status, message_type, contact_id, \
                                   phone_number_id, recipient, country, wa_message_id, body, \
                                   received_at, status_at) \
         VALUES ($1, 'INBOUND', 'RECEIVED', $2, $3, $4, $5, $6, $7, $8, $9, $9) \
         ON CONFLICT (wa_message_id) DO NOTHING \
         RETURNING id",
    )
    .bind(log.vendor)
    .bind(log.message_type)
    .bind(log.contact_id)
    .bind(log.phone_number_id)
    .bind(log.recipient)
    .bind(log.country)
    .bind(log.wamid)
    .bind(&log.body)
    .bind(log.received_at)
    .fetch_optional(conn)
    .await
}

/// Opts an opted-in contact out by keyword.
pub(crate) async fn opt_out(
    conn: &mut PgConnection,
    vendor: Uuid,
    contact: Uuid,
    at: DateTime<Utc>,
    reason: &str,
    wamid: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE contacts SET opted_out = true, opted_out_at = $3, opt_state_at = $3, \
                opt_out_source = 'INBOUND_KEYWORD', opt_out_reason = $4, opt_out_wa_message_id = $5 \
         WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor)
    .bind(contact)
    .bind(at)
    .bind(reason)
    .bind(wamid)
    .execute(conn)
    .await?;
    Ok(())
}

/// Opts an opted-out contact back in. The opt-out details are cleared, as the directory does
/// (their history stays in `contact_changes` and `audit_log`).
pub(crate) async fn opt_in(
    conn: &mut PgConnection,
    vendor: Uuid,
    contact: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE contacts SET opted_out = false, opted_out_at = NULL, opt_state_at = $3, \
                opt_out_source = NULL, opt_out_reason = NULL, opt_out_wa_message_id = NULL \
         WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor)
    .bind(contact)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that consent was re-affirmed at `at` without changing it (a START from an
/// opted-in contact), so that an older keyword arriving later is recognised as stale.
pub(crate) async fn reaffirm_opt_state(
    conn: &mut PgConnection,
    vendor: Uuid,
    contact: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE contacts SET opt_state_at = $3 WHERE vendor_id = $1 AND id = $2")
        .bind(vendor)
        .bind(contact)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
