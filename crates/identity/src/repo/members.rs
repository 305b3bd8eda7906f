//! The users of one vendor, as its ADMINs manage them: invitations, the list, changes.
//! Called inside a tenant transaction and filtered by `vendor` too (two walls), except
//! `accept_invite`, which the invitee runs before having a principal.

use kloyst_core::{UserId, VendorId};
use sqlx::PgConnection;
use uuid::Uuid;

use super::users::UserRow;
use crate::cursor::Position;
use crate::model::{Role, UserStatus};

/// An invitee: no password until they accept.
pub(crate) async fn insert_invited(
    conn: &mut PgConnection,
    vendor: VendorId,
    email: &str,
    name: &str,
    role: Role,
    invited_by: UserId,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as(concat!(
        "INSERT INTO users (vendor_id, email, name, role, status, invited_by, invited_at)
         VALUES ($1, $2, $3, $4, 'INVITED', $5, now())
         RETURNING ",
        user_columns!(),
        ""
    ))
    .bind(vendor.as_uuid())
    .bind(email)
    .bind(name)
    .bind(role)
    .bind(invited_by.as_uuid())
    .fetch_one(conn)
    .await
}

/// Inviting again someone who has not accepted yet: new role/name, new invitation time.
pub(crate) async fn reinvite(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    name: &str,
    role: Role,
    invited_by: UserId,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE users SET name = $3, role = $4, invited_by = $5, invited_at = now()
          WHERE vendor_id = $1 AND id = $2 AND status = 'INVITED'
         RETURNING ",
        user_columns!(),
        ""
    ))
    .bind(vendor.as_uuid())
    .bind(id)
    .bind(name)
    .bind(role)
    .bind(invited_by.as_uuid())
    .fetch_one(conn)
    .await
}

pub(crate) async fn accept_invite(
    conn: &mut PgConnection,
    id: Uuid,
    password_hash: &str,
    name: Option<&str>,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE users
            SET password_hash = $2, name = COALESCE($3, name), status = 'ACTIVE',
                email_verified_at = now(), last_login_at = now()
          WHERE id = $1 AND status = 'INVITED'
         RETURNING ",
        user_columns!(),
        ""
    ))
    .bind(id)
    .bind(password_hash)
    .bind(name)
    .fetch_one(conn)
    .await
}

/// A page of the vendor's users, newest first; `after` is the last row of the previous
/// page. Served by `users_vendor_created_idx (vendor_id, created_at DESC, id DESC)`.
pub(crate) async fn list(
    conn: &mut PgConnection,
    vendor: VendorId,
    limit: u32,
    after: Option<Position>,
) -> Result<Vec<UserRow>, sqlx::Error> {
    // Two statements rather than `$2 IS NULL OR …`, so that the cursor is an index
    // condition and not a filter over the vendor's users.
    let query = match after {
        None => sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE vendor_id = $1
              ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(vendor.as_uuid())
        .bind(i64::from(limit)),
        Some((at, id)) => sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE vendor_id = $1 AND (created_at, id) < ($3, $4)
              ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(vendor.as_uuid())
        .bind(i64::from(limit))
        .bind(at)
        .bind(id),
    };
    query.fetch_all(conn).await
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: UserId,
    for_update: bool,
) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = if for_update {
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE vendor_id = $1 AND id = $2 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE vendor_id = $1 AND id = $2"
        )
    };
    sqlx::query_as(sql)
        .bind(vendor.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await
}

/// Active ADMINs of the vendor other than `except`.
pub(crate) async fn other_active_admins(
    conn: &mut PgConnection,
    vendor: VendorId,
    except: UserId,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM users
          WHERE vendor_id = $1 AND role = 'ADMIN' AND status = 'ACTIVE' AND id <> $2",
    )
    .bind(vendor.as_uuid())
    .bind(except.as_uuid())
    .fetch_one(conn)
    .await
}

/// Applies an ADMIN's change; `disabled_at` follows the status.
pub(crate) async fn update(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: UserId,
    role: Role,
    status: UserStatus,
    name: &str,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE users
            SET role = $3, status = $4, name = $5,
                disabled_at = CASE WHEN $4 = 'DISABLED' THEN COALESCE(disabled_at, now()) END
          WHERE vendor_id = $1 AND id = $2
         RETURNING ",
        user_columns!(),
        ""
    ))
    .bind(vendor.as_uuid())
    .bind(id.as_uuid())
    .bind(role)
    .bind(status)
    .bind(name)
    .fetch_one(conn)
    .await
}
