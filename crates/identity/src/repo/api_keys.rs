//! Vendor API keys. Creating, listing and revoking run in the ADMIN's tenant transaction
//! and filter by `vendor` too (two walls); `authenticate` is system work on the pool: the
//! key is what tells whose it is.

use chrono::{DateTime, Utc};
use kloyst_core::{UserId, VendorId};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::caller::ApiScope;
use crate::cursor::Position;
use crate::model::{ApiKeyStatus, ApiKeyView};

/// Columns of [`KeyRow`]; the status is computed with the database clock, the one
/// `authenticate` judges expiry by.
macro_rules! key_columns {
    () => {
        "id, name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at,
         CASE WHEN revoked_at IS NOT NULL THEN 'REVOKED'
              WHEN expires_at <= now() THEN 'EXPIRED'
              ELSE 'ACTIVE' END AS status"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct KeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub status: ApiKeyStatus,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    pub fn view(&self) -> ApiKeyView {
        ApiKeyView {
            id: self.id,
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            scopes: known_scopes(&self.scopes),
            status: self.status,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        }
    }
}

/// The scopes this build knows; a stored one it does not (written by a newer release, or
/// by hand) grants nothing and is left out.
pub(crate) fn known_scopes(stored: &[String]) -> Vec<ApiScope> {
    stored.iter().filter_map(|s| ApiScope::parse(s)).collect()
}

pub(crate) struct NewKeyRow<'a> {
    pub vendor: VendorId,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a [u8; 32],
    pub scopes: &'a [ApiScope],
    pub created_by: UserId,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Serialises key creation within one vendor for the rest of the transaction, so that two
/// concurrent creations cannot both pass the active-key limit.
pub(crate) async fn lock_vendor(conn: &mut PgConnection, vendor: VendorId) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('kloyst.api_keys:' || $1::text, 0))")
        .bind(vendor.as_uuid())
        .execute(conn)
        .await
        .map(drop)
}

/// Keys neither revoked nor expired.
pub(crate) async fn count_active(conn: &mut PgConnection, vendor: VendorId) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM api_keys
          WHERE vendor_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(vendor.as_uuid())
    .fetch_one(conn)
    .await
}

pub(crate) async fn insert(conn: &mut PgConnection, new: &NewKeyRow<'_>) -> sqlx::Result<KeyRow> {
    let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
    sqlx::query_as(concat!(
        "INSERT INTO api_keys (vendor_id, name, prefix, key_hash, scopes, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING ",
        key_columns!()
    ))
    .bind(new.vendor.as_uuid())
    .bind(new.name)
    .bind(new.prefix)
    .bind(&new.hash[..])
    .bind(scopes)
    .bind(new.created_by.as_uuid())
    .bind(new.expires_at)
    .fetch_one(conn)
    .await
}

/// A page of the vendor's keys, newest first; `after` is the last row of the previous page.
/// Served by `api_keys_vendor_created_idx (vendor_id, created_at DESC, id DESC)`.
pub(crate) async fn list(
    conn: &mut PgConnection,
    vendor: VendorId,
    limit: u32,
    after: Option<Position>,
) -> sqlx::Result<Vec<KeyRow>> {
    // Two statements rather than `$2 IS NULL OR …`, so that the cursor is an index
    // condition and not a filter.
    let query = match after {
        None => sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE vendor_id = $1
              ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(vendor.as_uuid())
        .bind(i64::from(limit)),
        Some((at, id)) => sqlx::query_as(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE vendor_id = $1 AND (created_at, id) < ($3, $4)
              ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(vendor.as_uuid())
        .bind(i64::from(limit))
        .bind(at)
        .bind(id),
    };
    query.fetch_all(conn).await
}

/// What revoking found: the key's name and prefix if this call revoked it, `Already`
/// if it was, `Missing` if the vendor has no such key.
pub(crate) enum Revocation {
    Now { name: String, prefix: String },
    Already,
    Missing,
}

pub(crate) async fn revoke(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> sqlx::Result<Revocation> {
    let revoked: Option<(String, String)> = sqlx::query_as(
        "UPDATE api_keys SET revoked_at = now()
          WHERE vendor_id = $1 AND id = $2 AND revoked_at IS NULL
         RETURNING name, prefix",
    )
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((name, prefix)) = revoked {
        return Ok(Revocation::Now { name, prefix });
    }
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM api_keys WHERE vendor_id = $1 AND id = $2)",
    )
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok(if exists {
        Revocation::Already
    } else {
        Revocation::Missing
    })
}

/// The active key with this hash, whose vendor is active, as (id, vendor_id, scopes); in the
/// same statement its `last_used_at` is set, at most once a minute: a busy integration does
/// not turn every request into a row write. The touch never waits: a row another request
/// is touching right now is skipped (`SKIP LOCKED`), and the time condition is re-checked
/// on the row's newest version, so concurrent requests write it once.
pub(crate) async fn authenticate(
    pg: impl PgExecutor<'_>,
    hash: &[u8; 32],
) -> sqlx::Result<Option<(Uuid, Uuid, Vec<String>)>> {
    sqlx::query_as(
        "WITH found AS (
             SELECT k.id, k.vendor_id, k.scopes
               FROM api_keys k JOIN vendors v ON v.id = k.vendor_id
              WHERE k.key_hash = $1
                AND k.revoked_at IS NULL
                AND (k.expires_at IS NULL OR k.expires_at > now())
                AND v.status = 'ACTIVE'
         ), touched AS (
             UPDATE api_keys SET last_used_at = now()
              WHERE id IN (SELECT k.id FROM api_keys k
                            WHERE k.id IN (SELECT id FROM found)
                              AND (k.last_used_at IS NULL
                                   OR k.last_used_at < now() - interval '1 minute')
                              FOR UPDATE SKIP LOCKED)
         )
         SELECT id, vendor_id, scopes FROM found",
    )
    .bind(&hash[..])
    .fetch_optional(pg)
    .await
}
