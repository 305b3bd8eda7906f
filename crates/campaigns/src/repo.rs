//! The quote's SQL. Every query filters by the vendor itself besides RLS, and takes the
//! caller's connection so the quote can run inside the launch transaction.

use chrono::{DateTime, Utc};
use kloyst_core::VendorId;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TemplateRow {
    pub id: Uuid,
    pub name: String,
    pub language: String,
    pub category: String,
    pub meta_category: Option<String>,
    pub status: String,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ListRow {
    pub id: Uuid,
    pub name: String,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RateCardRow {
    pub name: String,
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub is_sample: bool,
}

/// A list's members of one country (`None`: no country), split by opt-out.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct CountryCount {
    pub country: Option<String>,
    pub reachable: i64,
    pub opted_out: i64,
}

pub(crate) async fn template(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> sqlx::Result<Option<TemplateRow>> {
    sqlx::query_as(
        "SELECT id, name, language, category, meta_category, status
           FROM templates WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> sqlx::Result<Option<ListRow>> {
    sqlx::query_as("SELECT id, name FROM contact_lists WHERE vendor_id = $1 AND id = $2")
        .bind(vendor.as_uuid())
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The whole list in one pass: one row per country (a few hundred at most), never one per
/// contact.
pub(crate) async fn count_by_country(
    conn: &mut PgConnection,
    vendor: VendorId,
    list: Uuid,
) -> sqlx::Result<Vec<CountryCount>> {
    sqlx::query_as(
        "SELECT c.country,
                count(*) FILTER (WHERE NOT c.opted_out) AS reachable,
                count(*) FILTER (WHERE c.opted_out)     AS opted_out
           FROM contact_list_members m
           JOIN contacts c ON c.vendor_id = m.vendor_id AND c.id = m.contact_id
          WHERE m.vendor_id = $1 AND m.list_id = $2
          GROUP BY c.country",
    )
    .bind(vendor.as_uuid())
    .bind(list)
    .fetch_all(conn)
    .await
}

/// Reference data (not tenant data): readable by the tenant role.
pub(crate) async fn rate_card(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<RateCardRow> {
    sqlx::query_as("SELECT name, currency, effective_from, is_sample FROM rate_cards WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
}
