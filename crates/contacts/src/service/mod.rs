//! The contacts service: one method per use case. Everything done for a user runs in
//! `begin_for(principal)` (RLS on their vendor, session checked) and filters by that vendor.

mod directory;
mod import_run;
mod imports;
mod lists;

use std::sync::Arc;

pub use import_run::{ImportRunner, ImportRunnerSettings, RunOutcome};
pub use imports::RunImport;

use kloyst_config::{ConfigError, Env};
use kloyst_core::UserId;
use kloyst_db::PgPool;
use kloyst_identity::Principal;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::error::ContactsError;

/// `IMPORT_MAX_BYTES`, `IMPORT_CHUNK_ROWS`.
#[derive(Clone, Debug)]
pub struct ContactsSettings {
    /// `IMPORT_MAX_BYTES` (100 MiB): the largest CSV upload accepted.
    pub import_max_bytes: u64,
    /// `IMPORT_CHUNK_ROWS` (5,000): rows per import chunk (one transaction each).
    pub import_chunk_rows: u32,
}

impl ContactsSettings {
    /// The most rows a JSON bulk body may carry; it is processed inline.
    pub const INLINE_MAX_ROWS: usize = 5_000;

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let settings = Self {
            import_max_bytes: env.parse_or("IMPORT_MAX_BYTES", 100 * 1024 * 1024)?,
            import_chunk_rows: env.parse_or("IMPORT_CHUNK_ROWS", 5_000)?,
        };
        if settings.import_chunk_rows == 0 || settings.import_chunk_rows > 50_000 {
            return Err(ConfigError::Invalid {
                var: "IMPORT_CHUNK_ROWS",
                reason: "must be between 1 and 50000".to_owned(),
            });
        }
        Ok(settings)
    }
}

/// The contacts service. Cheap to clone.
#[derive(Clone)]
pub struct Contacts {
    inner: Arc<Inner>,
}

struct Inner {
    pg: PgPool,
    settings: ContactsSettings,
}

impl Contacts {
    pub fn new(pg: PgPool, settings: ContactsSettings) -> Self {
        Self {
            inner: Arc::new(Inner { pg, settings }),
        }
    }

    pub fn settings(&self) -> &ContactsSettings {
        &self.inner.settings
    }

    fn pg(&self) -> &PgPool {
        &self.inner.pg
    }
}

/// The tenant transaction of a request made by `who` (RLS on its vendor; a user disabled or
/// re-roled since the token was issued is refused: [`ContactsError::SessionRevoked`]).
async fn begin_for(
    pg: &PgPool,
    who: &Principal,
) -> Result<Transaction<'static, Postgres>, ContactsError> {
    Ok(kloyst_db::begin_as_user(pg, who.vendor_id, who.user_id, who.role.as_str()).await?)
}

/// Tags the contact-change audit rows that the `contacts` triggers write in this
/// transaction with who did it, from which request, and (for imports) which job.
async fn set_change_context(
    conn: &mut PgConnection,
    actor: Option<UserId>,
    request_id: Option<&str>,
    import_job: Option<Uuid>,
) -> Result<(), ContactsError> {
    sqlx::query(
        "SELECT set_config('app.actor', $1, true), set_config('app.request_id', $2, true), \
         set_config('app.import_job_id', $3, true)",
    )
    .bind(actor.map(|u| format!("user:{u}")).unwrap_or_default())
    .bind(request_id.unwrap_or_default())
    .bind(import_job.map(|j| j.to_string()).unwrap_or_default())
    .execute(conn)
    .await?;
    Ok(())
}
