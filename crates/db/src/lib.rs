//! The stores: Postgres (system of record) and Redis (queues, limits, caches).

mod pg;
pub mod redis;
mod tenant;

pub use pg::{connect, migrate, ping, DbError};
pub use sqlx::{PgConnection, PgPool, Postgres, Transaction};
pub use tenant::{begin_as_user, begin_tenant, end_read_only, is_session_revoked, TENANT_ROLE};
