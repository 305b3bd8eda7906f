//! The `templates` table. Tenant functions filter by `vendor` (RLS is the second wall);
//! the submitter's and the webhook's functions run on a system connection and find a
//! template by its id or by Meta's.

use chrono::{DateTime, Utc};
use kloyst_core::{UserId, VendorId};
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::model::TemplateView;
use crate::validate::ValidTemplate;

/// The columns of [`TemplateView`].
macro_rules! view_columns {
    () => {
        "id, name, language, category, meta_category, parameter_format, components, param_count,
         status, meta_status, rejection_reason, rejection_info, quality_rating, meta_template_id,
         submitted_at, last_submit_error AS submit_error, created_by, created_at, updated_at"
    };
}

/// A second template with the vendor's name and language.
pub(crate) const NAME_LANGUAGE_KEY: &str = "templates_vendor_id_name_language_key";
/// Two vendor-prefixed names that collide after truncation to 512 characters.
pub(crate) const META_NAME_LANGUAGE_KEY: &str = "templates_meta_name_language_key";

pub(crate) async fn insert(
    conn: &mut PgConnection,
    vendor: VendorId,
    created_by: UserId,
    template: &ValidTemplate,
    meta_name: &str,
) -> Result<TemplateView, sqlx::Error> {
    sqlx::query_as(concat!(
        "INSERT INTO templates (vendor_id, name, language, category, parameter_format, components,
                                param_count, meta_name, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
        view_columns!()
    ))
    .bind(vendor.as_uuid())
    .bind(&template.name)
    .bind(&template.language)
    .bind(template.category)
    .bind(template.parameter_format.as_str())
    .bind(&template.components)
    .bind(template.param_count)
    .bind(meta_name)
    .bind(created_by.as_uuid())
    .fetch_one(conn)
    .await
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> Result<Option<TemplateView>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        view_columns!(),
        " FROM templates WHERE vendor_id = $1 AND id = $2"
    ))
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Filters of a page; values already checked.
pub(crate) struct ListFilter<'a> {
    pub status: Option<&'a str>,
    pub category: Option<&'a str>,
    pub name_prefix: Option<&'a str>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// A page of the vendor's templates, newest first
/// (`templates_vendor_created_idx (vendor_id, created_at DESC, id DESC)`).
pub(crate) async fn list(
    conn: &mut PgConnection,
    vendor: VendorId,
    limit: u32,
    filter: &ListFilter<'_>,
) -> Result<Vec<TemplateView>, sqlx::Error> {
    // Built per request so that an absent filter is absent from the SQL, and the cursor is
    // an index condition rather than an `$n IS NULL OR …` filter.
    let mut query: QueryBuilder<'_, Postgres> = QueryBuilder::new(concat!(
        "SELECT ",
        view_columns!(),
        " FROM templates WHERE vendor_id = "
    ));
    query.push_bind(vendor.as_uuid());
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.to_owned());
    }
    if let Some(category) = filter.category {
        query
            .push(" AND category = ")
            .push_bind(category.to_owned());
    }
    if let Some(prefix) = filter.name_prefix {
        query
            .push(" AND starts_with(name, ")
            .push_bind(prefix.to_owned())
            .push(")");
    }
    if let Some((at, id)) = filter.after {
        query
            .push(" AND (created_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(limit));
    query.build_query_as().fetch_all(conn).await
}

/// What the submitter needs of a template, locked for the submission.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SubmitRow {
    pub vendor_id: Uuid,
    pub meta_name: String,
    pub language: String,
    pub category: String,
    pub parameter_format: String,
    pub components: Value,
    pub status: String,
    pub submitted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Locks the template for its submission; another submitter of the same template waits.
pub(crate) async fn lock_for_submit(
    conn: &mut PgConnection,
    vendor: Uuid,
    id: Uuid,
) -> Result<Option<SubmitRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT vendor_id, meta_name, language, category, parameter_format, components, status,
                submitted_at, created_at
           FROM templates WHERE id = $1 AND vendor_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(vendor)
    .fetch_optional(conn)
    .await
}

/// The id of the `waba_accounts` row of `waba_id`, created (as the shared WABA, no vendor)
/// when missing.
pub(crate) async fn ensure_shared_waba(
    conn: &mut PgConnection,
    waba_id: &str,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query("INSERT INTO waba_accounts (waba_id) VALUES ($1) ON CONFLICT (waba_id) DO NOTHING")
        .bind(waba_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT id FROM waba_accounts WHERE waba_id = $1")
        .bind(waba_id)
        .fetch_one(conn)
        .await
}

/// Serialises submissions to one WABA until the transaction ends, so that counting the
/// last hour's submissions and adding one cannot interleave.
pub(crate) async fn lock_waba_submissions(
    conn: &mut PgConnection,
    waba_account: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('kloyst.templates.submit:' || $1::text, 0))",
    )
    .bind(waba_account)
    .execute(conn)
    .await?;
    Ok(())
}

/// With `per_hour` submissions to the WABA in the last hour: how long until the oldest
/// that counts leaves the window. `None` while there is room.
pub(crate) async fn hourly_window_full_for(
    conn: &mut PgConnection,
    waba_account: Uuid,
    per_hour: u32,
) -> Result<Option<f64>, sqlx::Error> {
    // The per_hour-th newest submission of the window: once it is an hour old, the count
    // drops below the limit.
    sqlx::query_scalar(
        "SELECT GREATEST(EXTRACT(EPOCH FROM submitted_at + interval '1 hour' - now()), 0)::float8
           FROM templates
          WHERE waba_account_id = $1 AND submitted_at > now() - interval '1 hour'
          ORDER BY submitted_at DESC
         OFFSET $2 LIMIT 1",
    )
    .bind(waba_account)
    .bind(i64::from(per_hour.saturating_sub(1)))
    .fetch_optional(conn)
    .await
}

/// Saved templates not sent to Meta yet that were created before this one: its place in
/// the queue (`templates_submit_queue_idx`).
pub(crate) async fn unsubmitted_before(
    conn: &mut PgConnection,
    created_at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM templates
          WHERE status = 'PENDING' AND submitted_at IS NULL AND created_at < $1",
    )
    .bind(created_at)
    .fetch_one(conn)
    .await
}

/// Meta accepted the template for review (or approved it at once).
pub(crate) async fn mark_submitted(
    conn: &mut PgConnection,
    id: Uuid,
    waba_account: Uuid,
    meta_template_id: &str,
    status: &str,
    meta_status: &str,
    meta_category: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE templates
            SET waba_account_id = $2, meta_template_id = $3, status = $4, meta_status = $5,
                meta_category = COALESCE($6, meta_category), submitted_at = now(),
                submit_attempts = submit_attempts + 1, last_submit_error = NULL
          WHERE id = $1",
    )
    .bind(id)
    .bind(waba_account)
    .bind(meta_template_id)
    .bind(status)
    .bind(meta_status)
    .bind(meta_category)
    .execute(conn)
    .await?;
    Ok(())
}

/// Meta refused the creation call for good.
pub(crate) async fn mark_submit_failed(
    conn: &mut PgConnection,
    id: Uuid,
    waba_account: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE templates
            SET waba_account_id = $2, status = 'SUBMIT_FAILED', last_submit_error = $3,
                submit_attempts = submit_attempts + 1
          WHERE id = $1",
    )
    .bind(id)
    .bind(waba_account)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// A try that may work later: counted, with its error, for whoever looks at the template.
pub(crate) async fn record_failed_try(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE templates SET submit_attempts = submit_attempts + 1, last_submit_error = $2
          WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a status update needs of a template, locked.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StatusRow {
    pub id: Uuid,
    pub vendor_id: Uuid,
    pub status: String,
    pub status_changed_at: Option<DateTime<Utc>>,
}

pub(crate) async fn lock_by_meta_id(
    conn: &mut PgConnection,
    meta_template_id: &str,
) -> Result<Option<StatusRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, vendor_id, status, status_changed_at FROM templates
          WHERE meta_template_id = $1 FOR UPDATE",
    )
    .bind(meta_template_id)
    .fetch_optional(conn)
    .await
}

/// The template Meta knows as `meta_name` in `language` (`en-US` matches `en_US`), not yet
/// linked to another Meta id, submitted to this WABA or not yet submitted at all.
pub(crate) async fn lock_by_meta_name(
    conn: &mut PgConnection,
    waba_id: &str,
    meta_name: &str,
    language: &str,
) -> Result<Option<StatusRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, t.vendor_id, t.status, t.status_changed_at FROM templates t
          WHERE t.meta_name = $2 AND t.language = replace($3, '-', '_')
            AND t.meta_template_id IS NULL
            AND (t.waba_account_id IS NULL
                 OR t.waba_account_id IN (SELECT id FROM waba_accounts WHERE waba_id = $1))
          FOR UPDATE",
    )
    .bind(waba_id)
    .bind(meta_name)
    .bind(language)
    .fetch_optional(conn)
    .await
}

/// A status change from Meta.
pub(crate) struct StatusChange<'a> {
    pub status: &'a str,
    pub meta_status: &'a str,
    pub meta_template_id: &'a str,
    pub meta_category: Option<&'a str>,
    pub rejection_reason: Option<&'a str>,
    pub rejection_info: Option<&'a Value>,
    pub event_time: Option<DateTime<Utc>>,
}

pub(crate) async fn apply_status(
    conn: &mut PgConnection,
    id: Uuid,
    change: &StatusChange<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE templates
            SET status = $2, meta_status = $3, meta_template_id = COALESCE(meta_template_id, $4),
                meta_category = COALESCE($5, meta_category), rejection_reason = $6,
                rejection_info = $7, status_changed_at = COALESCE($8, status_changed_at)
          WHERE id = $1",
    )
    .bind(id)
    .bind(change.status)
    .bind(change.meta_status)
    .bind(change.meta_template_id)
    .bind(change.meta_category)
    .bind(change.rejection_reason)
    .bind(change.rejection_info)
    .bind(change.event_time)
    .execute(conn)
    .await?;
    Ok(())
}
