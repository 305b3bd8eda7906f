use kloyst_core::VendorId;
use sqlx::{PgPool, Postgres, Transaction};

/// The database role tenant requests run as; row-level security policies apply to it.
pub const TENANT_ROLE: &str = "kloyst_tenant";

/// Opens a transaction that can only see and write `vendor`'s rows.
///
/// ```text
/// BEGIN; SELECT set_config('role', 'kloyst_tenant', true), set_config('app.vendor_id', '<uuid>', true);
/// ```
///
/// The repositories filter by vendor id themselves; this is the second wall: even a query
/// that forgot its filter sees only this tenant, because the role is switched to
/// [`TENANT_ROLE`] and `app.vendor_id` is set for the transaction alone (`SET LOCAL`),
/// so a pooled connection never carries it into the next request.
pub async fn begin_tenant(
    pool: &PgPool,
    vendor: VendorId,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    // BEGIN and both settings in one simple-query message: one round trip instead of
    // two. A Uuid renders as hex and dashes only, so formatting it in is safe.
    // `set_config('role', …, true)` is `SET LOCAL ROLE`.
    let statement = format!(
        "BEGIN; SELECT set_config('role', '{TENANT_ROLE}', true), \
         set_config('app.vendor_id', '{}', true)",
        vendor.as_uuid()
    );
    let tx = pool.begin_with(statement).await?;
    Ok(tx)
}
