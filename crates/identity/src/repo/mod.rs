//! Repositories: SQL only, no rules. They take a connection so they join the caller's
//! transaction (the audit row and the outbox mail commit with the change).

/// The columns of `users::UserRow`, as a macro so statements stay `&'static str`
/// (`concat!`) and sqlx caches one prepared statement per query.
macro_rules! user_columns {
    () => {
        "id, vendor_id, email, name, role, status, password_hash, signup_company_name, created_at"
    };
}

pub(crate) mod api_keys;
pub(crate) mod members;
pub(crate) mod refresh_tokens;
pub(crate) mod users;
pub(crate) mod vendors;
