use kloyst_core::VendorId;
use sqlx::{PgPool, Postgres, Transaction};

/// The database role tenant requests run as; row-level security policies apply to it.
pub const TENANT_ROLE: &str = "kloyst_tenant";

/// Opens a transaction that can only see and write `vendor`'s rows.
///
/// The repositories filter by vendor id themselves; this is the second wall: even a query
/// that forgot its filter sees only this tenant, because the role is switched to
/// [`TENANT_ROLE`] and `app.vendor_id` is set for the transaction alone (`SET LOCAL`),
/// so a pooled connection never carries it into the next request.
pub async fn begin_tenant(
    pool: &PgPool,
    vendor: VendorId,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // A Uuid renders as hex and dashes only, so formatting it into the statement is safe;
    // it saves a round trip over set_config() with a bind.
    let statement = format!(
        "SET LOCAL ROLE {TENANT_ROLE}; SET LOCAL app.vendor_id = '{}'",
        vendor.as_uuid()
    );
    sqlx::raw_sql(&statement).execute(&mut *tx).await?;
    Ok(tx)
}
