//! One-message tenant reads: the session check, the tenant settings and one read statement
//! in a single simple-query message, so a request that only reads one statement costs one
//! round trip instead of three ([`crate::begin_as_user`], the query, the ROLLBACK).
//!
//! ```text
//! SELECT app_assert_session('<vendor>', '<user>', '<ROLE>');
//! SELECT set_config('transaction_read_only', 'on', true), set_config('role', 'kloyst_tenant', true),
//!        set_config('app.vendor_id', '<vendor>', true);
//! SELECT … the read …
//! ```
//!
//! Several statements in one message with no BEGIN run as ONE implicit transaction, so the
//! walls are the same as in a tenant transaction: the settings are transaction-local (nothing
//! is left on the pooled connection), RLS applies to the read, and if the session check
//! raises nothing after it runs and the connection is idle again. The message uses the simple
//! protocol, so there are no bind parameters: only `'static` text and typed ids go into it
//! ([`ReadSql`]), never a string a caller received.

use std::fmt::Write as _;

use futures::TryStreamExt;
use kloyst_core::{UserId, VendorId};
use sqlx::postgres::PgRow;
use sqlx::{Either, FromRow, PgPool};
use uuid::Uuid;

use crate::tenant::{session_check, TENANT_ROLE};

/// The statement of a one-message read ([`read_as_user`]), built only from `'static` text and
/// typed ids: nothing a request carried can reach the SQL text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadSql(String);

impl ReadSql {
    pub fn new(text: &'static str) -> Self {
        Self(text.to_owned())
    }

    /// Appends more fixed text.
    pub fn push(mut self, text: &'static str) -> Self {
        self.0.push_str(text);
        self
    }

    /// Appends `id` as a uuid literal. A Uuid renders as hex digits and dashes only.
    pub fn push_id(mut self, id: Uuid) -> Self {
        // Writing to a String cannot fail.
        let _ = write!(self.0, "'{id}'::uuid");
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many statements precede the read in the message.
const PREAMBLE_STATEMENTS: usize = 2;

/// Runs `read` for a signed-in user in one round trip and decodes its rows: the same checks
/// as [`crate::begin_as_user`] followed by one statement, in one implicit transaction.
///
/// A session that no longer holds is an error for which [`crate::is_session_revoked`] is
/// true. The transaction is read-only: a write in `read` fails (SQLSTATE 25006) rather than
/// being committed by the implicit transaction's end. `read` must be one statement.
///
/// The rows come in the text format (simple protocol). sqlx decodes text for the types the
/// callers read (uuid, text, timestamptz under the connection's `TimeZone=UTC`, jsonb,
/// NULLs); a new column type should get a test that it decodes here as it does in binary.
pub async fn read_as_user<R>(
    pool: &PgPool,
    vendor: VendorId,
    user: UserId,
    role: &'static str,
    read: &ReadSql,
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    // Another statement would run in the same transaction and its rows would be mistaken
    // for the read's: refuse it outright.
    if read.0.contains(';') {
        return Err(sqlx::Error::Protocol(
            "a one-message tenant read is one statement (no ';')".to_owned(),
        ));
    }
    // Read-only first: going read-only is allowed at any point of a transaction.
    let message = format!(
        "{}; SELECT set_config('transaction_read_only', 'on', true), \
         set_config('role', '{TENANT_ROLE}', true), \
         set_config('app.vendor_id', '{}', true); {}",
        session_check(vendor, user, role)?,
        vendor.as_uuid(),
        read.0
    );
    let mut results = sqlx::raw_sql(&message).fetch_many(pool);
    let mut completed = 0;
    let mut rows = Vec::new();
    while let Some(result) = results.try_next().await? {
        match result {
            // Each statement ends with its CommandComplete.
            Either::Left(_) => completed += 1,
            Either::Right(row) if completed == PREAMBLE_STATEMENTS => rows.push(R::from_row(&row)?),
            Either::Right(_) => {}
        }
    }
    if completed != PREAMBLE_STATEMENTS + 1 {
        return Err(sqlx::Error::Protocol(format!(
            "a one-message tenant read completed {completed} statements, expected {}",
            PREAMBLE_STATEMENTS + 1
        )));
    }
    Ok(rows)
}
