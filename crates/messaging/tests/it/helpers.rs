//! Vendors, outbound history and webhook changes for the tests. Setup rows are inserted
//! directly as the system owner (as the webhook worker's connection is); everything under
//! test goes through `record_inbound`, in a transaction like the processor's.

use chrono::{DateTime, Utc};
use kloyst_config::Env;
use kloyst_messaging::{record_inbound, InboundReport, InboundSettings};
use kloyst_meta::webhook::MessagesValue;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub const WABA_ID: &str = "102290129340398";
pub const PHONE_NUMBER_ID: &str = "106540352242922";

pub async fn new_vendor(pg: &PgPool, name: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO vendors (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(pg)
        .await
        .expect("insert a vendor")
}

/// Settings with `default_vendor` and extra `OPT_OUT_KEYWORDS`.
pub fn settings(default_vendor: Option<Uuid>, opt_out_keywords: &str) -> InboundSettings {
    let mut env = Env::from_pairs([("OPT_OUT_KEYWORDS", opt_out_keywords)]);
    if let Some(vendor) = default_vendor {
        env = env.with("INBOUND_DEFAULT_VENDOR_ID", vendor.to_string());
    }
    InboundSettings::from_env(&env).expect("inbound settings")
}

/// An OUTBOUND message of `vendor` to `recipient`, as a send leaves it.
pub async fn sent_to(pg: &PgPool, vendor: Uuid, recipient: &str) {
    sqlx::query(
        "INSERT INTO message_logs (vendor_id, direction, status, recipient, wa_message_id, sent_at)
         VALUES ($1, 'OUTBOUND', 'SENT', $2, $3, now())",
    )
    .bind(vendor)
    .bind(recipient)
    .bind(format!("wamid.out.{}", Uuid::new_v4().simple()))
    .execute(pg)
    .await
    .expect("insert an outbound message");
}

/// A text message as Meta posts it (`timestamp` in Unix seconds, as a string).
pub fn text(wamid: &str, from: &str, timestamp: i64, body: &str) -> Value {
    json!({
        "from": from, "id": wamid, "timestamp": timestamp.to_string(),
        "type": "text", "text": { "body": body }
    })
}

/// A `messages` change value with `messages` and one profile per distinct sender.
pub fn change(messages: Vec<Value>) -> MessagesValue {
    let mut contacts: Vec<Value> = Vec::new();
    for message in &messages {
        if let Some(from) = message.get("from").and_then(Value::as_str) {
            if !contacts.iter().any(|c| c["wa_id"] == from) {
                contacts.push(
                    json!({ "profile": { "name": format!("Customer {from}") }, "wa_id": from }),
                );
            }
        }
    }
    serde_json::from_value(json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
        "contacts": contacts,
        "messages": messages,
    }))
    .expect("a valid messages value")
}

/// Runs `record_inbound` in its own committed transaction, as the processor does.
pub async fn deliver(
    pg: &PgPool,
    settings: &InboundSettings,
    value: &MessagesValue,
) -> InboundReport {
    let mut tx = pg.begin().await.expect("begin");
    let report = record_inbound(&mut tx, settings, WABA_ID, value, 42)
        .await
        .expect("record_inbound");
    tx.commit().await.expect("commit");
    report
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("a valid time")
}

/// A contact as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredContact {
    pub id: Uuid,
    pub name: Option<String>,
    pub country: Option<String>,
    pub opted_out: bool,
    pub opted_out_at: Option<DateTime<Utc>>,
    pub opt_out_reason: Option<String>,
    pub opt_out_source: Option<String>,
    pub opt_out_wa_message_id: Option<String>,
}

pub async fn contact(pg: &PgPool, vendor: Uuid, mobile: &str) -> Option<StoredContact> {
    sqlx::query_as(
        "SELECT id, name, country, opted_out, opted_out_at, opt_out_reason, opt_out_source,
                opt_out_wa_message_id
         FROM contacts WHERE vendor_id = $1 AND mobile = $2",
    )
    .bind(vendor)
    .bind(mobile)
    .fetch_optional(pg)
    .await
    .expect("read a contact")
}

/// An inbound log row as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredLog {
    pub vendor_id: Uuid,
    pub direction: String,
    pub status: String,
    pub message_type: String,
    pub contact_id: Option<Uuid>,
    pub phone_number_id: Option<String>,
    pub recipient: String,
    pub country: Option<String>,
    pub body: Option<Value>,
    pub received_at: Option<DateTime<Utc>>,
}

/// The log rows of `wamid` (a unique key: zero or one).
pub async fn logs(pg: &PgPool, wamid: &str) -> Vec<StoredLog> {
    sqlx::query_as(
        "SELECT vendor_id, direction, status, message_type, contact_id, phone_number_id,
                recipient, country, body, received_at
         FROM message_logs WHERE wa_message_id = $1",
    )
    .bind(wamid)
    .fetch_all(pg)
    .await
    .expect("read message logs")
}

/// The (action, actor_kind, details) of the audit rows about `contact`, oldest first.
pub async fn audit(pg: &PgPool, contact: Uuid) -> Vec<(String, String, Value)> {
    sqlx::query_as(
        "SELECT action, actor_kind, details FROM audit_log
         WHERE target_type = 'contact' AND target_id = $1 ORDER BY id",
    )
    .bind(contact.to_string())
    .fetch_all(pg)
    .await
    .expect("read the audit log")
}
