//! `refresh_tokens`: one row per issued token, SHA-256 only. A login starts a family; each
//! rotation adds a row to it and marks the previous one used (`used_at`, `replaced_by`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use kloyst_audit::RequestMeta;
use kloyst_core::{UserId, VendorId};
use sqlx::types::ipnetwork::IpNetwork;
use sqlx::PgConnection;
use uuid::Uuid;

/// Why a token stopped working (the column's CHECK values).
#[derive(Clone, Copy, Debug)]
pub(crate) enum RevokeReason {
    Logout,
    ReuseDetected,
    UserDisabled,
}

impl RevokeReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "LOGOUT",
            Self::ReuseDetected => "REUSE_DETECTED",
            Self::UserDisabled => "USER_DISABLED",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub vendor_id: Uuid,
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub(crate) struct NewToken<'a> {
    pub user: UserId,
    pub vendor: VendorId,
    pub family: Uuid,
    pub hash: &'a [u8; 32],
    pub ttl: Duration,
}

pub(crate) async fn insert(
    conn: &mut PgConnection,
    token: &NewToken<'_>,
    meta: &RequestMeta,
) -> Result<Uuid, sqlx::Error> {
    let user_agent = meta
        .user_agent
        .as_deref()
        .map(|ua| ua.chars().take(512).collect::<String>());
    sqlx::query_scalar(
        "INSERT INTO refresh_tokens (user_id, vendor_id, family_id, token_hash, expires_at,
                                     user_agent, ip)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6, $7)
         RETURNING id",
    )
    .bind(token.user.as_uuid())
    .bind(token.vendor.as_uuid())
    .bind(token.family)
    .bind(token.hash.as_slice())
    .bind(token.ttl.as_secs_f64())
    .bind(user_agent)
    .bind(meta.ip.map(IpNetwork::from))
    .fetch_one(conn)
    .await
}

/// Locks the row, so two parallel uses of one token are serialised: the second one sees
/// `used_at` and is treated as reuse.
pub(crate) async fn find_for_update(
    conn: &mut PgConnection,
    hash: &[u8; 32],
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, vendor_id, family_id, expires_at, used_at, revoked_at
           FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash.as_slice())
    .fetch_optional(conn)
    .await
}

pub(crate) async fn mark_used(
    conn: &mut PgConnection,
    id: Uuid,
    replaced_by: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET used_at = now(), replaced_by = $2 WHERE id = $1")
        .bind(id)
        .bind(replaced_by)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every token of the family that is still live; returns how many.
pub(crate) async fn revoke_family(
    conn: &mut PgConnection,
    family: Uuid,
    reason: RevokeReason,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now(), revoke_reason = $2
          WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .bind(reason.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every live token of a user (disabled by an ADMIN). Tenant-scoped.
pub(crate) async fn revoke_user(
    conn: &mut PgConnection,
    vendor: VendorId,
    user: UserId,
    reason: RevokeReason,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now(), revoke_reason = $3
          WHERE vendor_id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(vendor.as_uuid())
    .bind(user.as_uuid())
    .bind(reason.as_str())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
