//! The `users` row, and the system work on it: registration, verification, login and the
//! per-request authentication check (no tenant is known yet, or the vendor is what is
//! being found out). What a vendor's ADMIN does to its users is in `members`.

use chrono::{DateTime, Utc};
use kloyst_core::{UserId, VendorId};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::model::{Role, UserStatus, UserView};

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub vendor_id: Option<Uuid>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub password_hash: Option<String>,
    pub signup_company_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    pub fn user_id(&self) -> UserId {
        UserId::from_uuid(self.id)
    }

    pub fn vendor(&self) -> Option<VendorId> {
        self.vendor_id.map(VendorId::from_uuid)
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.user_id(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            status: self.status,
            created_at: self.created_at,
        }
    }
}

/// A registration awaiting its code. `None` when the email is taken (by any account).
pub(crate) async fn insert_pending(
    conn: &mut PgConnection,
    email: &str,
    password_hash: &str,
    name: &str,
    company_name: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (email, password_hash, name, signup_company_name, status, role)
         VALUES ($1, $2, $3, $4, 'PENDING_VERIFICATION', 'ADMIN')
         ON CONFLICT (email) DO NOTHING
         RETURNING id",
    )
    .bind(email)
    .bind(password_hash)
    .bind(name)
    .bind(company_name)
    .fetch_optional(conn)
    .await
}

/// System lookup by address (login, registration, verification): not tenant-scoped,
/// because the vendor is what is being found out.
pub(crate) async fn find_by_email(
    executor: impl PgExecutor<'_>,
    email: &str,
    for_update: bool,
) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = if for_update {
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email = $1 FOR UPDATE"
        )
    } else {
        concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1")
    };
    sqlx::query_as(sql)
        .bind(email)
        .fetch_optional(executor)
        .await
}

/// A second registration of an address still awaiting its code replaces the first: the
/// person who reads the mailbox decides which registration is verified.
pub(crate) async fn renew_pending(
    conn: &mut PgConnection,
    id: Uuid,
    password_hash: &str,
    name: &str,
    company_name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, name = $3, signup_company_name = $4
          WHERE id = $1 AND status = 'PENDING_VERIFICATION'",
    )
    .bind(id)
    .bind(password_hash)
    .bind(name)
    .bind(company_name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Verification: the user becomes the first (ADMIN) user of the vendor just created.
pub(crate) async fn activate_as_admin(
    conn: &mut PgConnection,
    id: Uuid,
    vendor: VendorId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users
            SET vendor_id = $2, role = 'ADMIN', status = 'ACTIVE', email_verified_at = now(),
                last_login_at = now(), signup_company_name = NULL
          WHERE id = $1 AND status = 'PENDING_VERIFICATION'",
    )
    .bind(id)
    .bind(vendor.as_uuid())
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn record_login(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The per-request check behind `authenticate`: one primary-key probe.
pub(crate) async fn active_role(
    executor: impl PgExecutor<'_>,
    user: UserId,
    vendor: VendorId,
) -> Result<Option<Role>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT role FROM users WHERE id = $1 AND vendor_id = $2 AND status = 'ACTIVE'",
    )
    .bind(user.as_uuid())
    .bind(vendor.as_uuid())
    .fetch_optional(executor)
    .await
}
