//! The `vendors` row (the tenant and its profile) and its wallet.

use chrono::{DateTime, Utc};
use kloyst_core::VendorId;
use kloyst_db::PgPool;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::model::{BillingAddress, PlanType, Principal, VendorProfile};

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct VendorRow {
    pub id: Uuid,
    pub name: String,
    pub company_name: Option<String>,
    pub plan_type: PlanType,
    pub billing_email: Option<String>,
    pub billing_address: Option<serde_json::Value>,
    pub gstin: Option<String>,
    pub default_country: String,
    pub time_zone: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl VendorRow {
    pub fn profile(self) -> Result<VendorProfile, serde_json::Error> {
        let billing_address = self
            .billing_address
            .map(serde_json::from_value::<BillingAddress>)
            .transpose()?;
        Ok(VendorProfile {
            id: VendorId::from_uuid(self.id),
            name: self.name,
            company_name: self.company_name,
            plan_type: self.plan_type,
            billing_email: self.billing_email,
            billing_address,
            gstin: self.gstin,
            default_country: self.default_country,
            time_zone: self.time_zone,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

macro_rules! vendor_columns {
    () => {
        "id, name, company_name, plan_type, billing_email, billing_address, gstin, \
         default_country, time_zone, created_at, updated_at"
    };
}

/// A new tenant on the Shared WABA plan, named after the registration's company.
pub(crate) async fn create(
    conn: &mut PgConnection,
    company_name: &str,
) -> Result<VendorId, sqlx::Error> {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO vendors (name, company_name, plan_type) VALUES ($1, $1, 'SHARED') RETURNING id",
    )
    .bind(company_name)
    .fetch_one(conn)
    .await?;
    Ok(VendorId::from_uuid(id))
}

/// Every vendor has exactly one wallet (unique on vendor_id); it starts empty, in INR.
pub(crate) async fn create_wallet(
    conn: &mut PgConnection,
    vendor: VendorId,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO wallets (vendor_id, currency, balance) VALUES ($1, 'INR', 0) RETURNING id",
    )
    .bind(vendor.as_uuid())
    .fetch_one(conn)
    .await
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    vendor: VendorId,
) -> Result<Option<VendorRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        vendor_columns!(),
        " FROM vendors WHERE id = $1"
    ))
    .bind(vendor.as_uuid())
    .fetch_optional(conn)
    .await
}

/// [`get`] for a request of `who` in one prepared round trip: `app_vendor_profile` (migration
/// 23) checks the session, sets the tenant settings and reads, in the call's implicit
/// transaction. A session that no longer holds fails with an error for which
/// `kloyst_db::is_session_revoked` is true.
pub(crate) async fn get_as_user(
    pg: &PgPool,
    who: &Principal,
) -> Result<Option<VendorRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        vendor_columns!(),
        " FROM app_vendor_profile($1, $2, $3)"
    ))
    .bind(who.vendor_id.as_uuid())
    .bind(who.user_id.as_uuid())
    .bind(who.role.as_str())
    .fetch_optional(pg)
    .await
}

/// The validated, normalised changes of a profile update; `None` = unchanged.
#[derive(Debug, Default)]
pub(crate) struct ProfileChanges {
    pub company_name: Option<String>,
    pub billing_email: Option<String>,
    pub billing_address: Option<serde_json::Value>,
    pub gstin: Option<String>,
    pub default_country: Option<String>,
    pub time_zone: Option<String>,
}

/// Only the columns the tenant role may update (migration grants), each kept when `NULL`
/// is passed. The company name is also the vendor's display name.
pub(crate) async fn update_profile(
    conn: &mut PgConnection,
    vendor: VendorId,
    changes: &ProfileChanges,
) -> Result<Option<VendorRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "UPDATE vendors
            SET company_name = COALESCE($2, company_name),
                name = COALESCE($2, name),
                billing_email = COALESCE($3, billing_email),
                billing_address = COALESCE($4, billing_address),
                gstin = COALESCE($5, gstin),
                default_country = COALESCE($6, default_country),
                time_zone = COALESCE($7, time_zone)
          WHERE id = $1
         RETURNING ",
        vendor_columns!()
    ))
    .bind(vendor.as_uuid())
    .bind(&changes.company_name)
    .bind(&changes.billing_email)
    .bind(&changes.billing_address)
    .bind(&changes.gstin)
    .bind(&changes.default_country)
    .bind(&changes.time_zone)
    .fetch_optional(conn)
    .await
}

/// Whether PostgreSQL knows the zone (its copy of the IANA database).
pub(crate) async fn time_zone_exists(
    conn: &mut PgConnection,
    name: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
}
