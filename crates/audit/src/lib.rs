//! The append-only audit log. Write the entry on the same connection (transaction) as the
//! change it records, so the two commit or roll back together. Never put a password, an OTP
//! or a token in `details`.

use std::net::IpAddr;

use kloyst_core::{UserId, VendorId};
use sqlx::PgConnection;

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    ApiKey(uuid::Uuid),
    System,
    Anonymous,
}

/// The request an action came from.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AuditEntry<'a> {
    pub vendor_id: Option<VendorId>,
    pub actor: Actor,
    /// Dotted lower-case name, e.g. `auth.login_failed`, `user.role_changed`.
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

pub async fn record(
    conn: &mut PgConnection,
    entry: &AuditEntry<'_>,
    meta: &RequestMeta,
) -> Result<(), sqlx::Error> {
    let (kind, user_id, api_key_id) = match entry.actor {
        Actor::User(id) => ("USER", Some(id.as_uuid()), None),
        Actor::ApiKey(id) => ("API_KEY", None, Some(id)),
        Actor::System => ("SYSTEM", None, None),
        Actor::Anonymous => ("ANONYMOUS", None, None),
    };
    // The user agent is caller-controlled: keep it within the column's limit.
    let user_agent = meta
        .user_agent
        .as_deref()
        .map(|ua| ua.chars().take(512).collect::<String>());
    sqlx::query(
        "INSERT INTO audit_log (vendor_id, actor_kind, actor_user_id, actor_api_key_id, action,
                                target_type, target_id, request_id, ip, user_agent, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(entry.vendor_id.map(|v| v.as_uuid()))
    .bind(kind)
    .bind(user_id)
    .bind(api_key_id)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(&entry.target_id)
    .bind(&meta.request_id)
    .bind(meta.ip.map(sqlx::types::ipnetwork::IpNetwork::from))
    .bind(user_agent)
    .bind(&entry.details)
    .execute(conn)
    .await?;
    Ok(())
}
