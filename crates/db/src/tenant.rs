use kloyst_core::{UserId, VendorId};
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
    pool.begin_with(begin_statement(vendor)).await
}

/// BEGIN and both settings in one simple-query message: one round trip instead of two.
/// A Uuid renders as hex and dashes only, so formatting it in is safe.
/// `set_config('role', …, true)` is `SET LOCAL ROLE`.
fn begin_statement(vendor: VendorId) -> String {
    format!(
        "BEGIN; SELECT set_config('role', '{TENANT_ROLE}', true), \
         set_config('app.vendor_id', '{}', true)",
        vendor.as_uuid()
    )
}

/// SQLSTATE `invalid_authorization_specification`, raised by `app_assert_session`.
const SESSION_REVOKED: &str = "28000";

/// [`begin_tenant`] for a request made by a signed-in user, checking in the same round trip
/// that the token's claims still hold: the user is still `ACTIVE` in `vendor` with `role`.
///
/// An access token outlives a "disable user" or a role change by up to its lifetime; this
/// makes the change take effect on the next request without a separate lookup per request.
/// A failed check is an error for which [`is_session_revoked`] is true (answer 401).
pub async fn begin_as_user(
    pool: &PgPool,
    vendor: VendorId,
    user: UserId,
    role: &'static str,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    // Roles are our own constants ("ADMIN", "STAFF"); anything else must not reach the SQL text.
    if role.is_empty() || !role.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return Err(sqlx::Error::Protocol(format!("not a role name: {role:?}")));
    }
    // The check first: if it fails, the message's implicit transaction is rolled back and
    // the connection goes back to the pool idle (sqlx does not roll back a BEGIN statement
    // that failed, so a failure after BEGIN would pool a connection in an aborted block).
    let statement = format!(
        "SELECT app_assert_session('{}', '{}', '{role}'); {}",
        vendor.as_uuid(),
        user.as_uuid(),
        begin_statement(vendor)
    );
    pool.begin_with(statement).await
}

/// Ends a transaction that only read. Nothing to keep, so it is rolled back rather than
/// committed, and the rollback costs no round trip of its own: sqlx queues the ROLLBACK and
/// sends it together with the check it runs on every connection returning to the pool, where
/// a COMMIT would be one round trip and that check another.
pub fn end_read_only(tx: Transaction<'static, Postgres>) {
    drop(tx);
}

/// Whether `error` is [`begin_as_user`] refusing a session that no longer holds.
pub fn is_session_revoked(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == SESSION_REVOKED)
}
