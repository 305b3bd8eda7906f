//! The templates service for vendors: create (saved PENDING, submission queued through the
//! outbox in the same transaction), list and get. Any role of the vendor may use it.
//! Everything runs in `kloyst_db::begin_as_user` (RLS on the caller's vendor) and filters
//! by the vendor id of the token.

use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::{page, FieldError, VendorId};
use kloyst_db::PgPool;
use kloyst_identity::Principal;
use kloyst_queue::Job;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::error::{violates, TemplatesError};
use crate::model::{Page, TemplateFilter, TemplateInput, TemplateView, CATEGORIES, STATUSES};
use crate::repo;
use crate::validate::{validate, NAME_MAX_CHARS};

/// The worker-pool's order to send a saved template to Meta, queued through the outbox in
/// the transaction that saves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitTemplate {
    pub template_id: Uuid,
    pub vendor_id: VendorId,
}

impl Job for SubmitTemplate {
    const KIND: &'static str = "templates.submit";
}

/// The name a template has at Meta: unique under the shared WABA, where every vendor's
/// templates live side by side (`v` + the first 8 hex digits of the vendor id + `_` + name,
/// cut to Meta's 512 characters).
pub fn meta_name(vendor: VendorId, name: &str) -> String {
    let mut prefixed = format!("v{}_{name}", &vendor.as_uuid().simple().to_string()[..8]);
    // Names are ASCII (validated), so a byte cut is a character cut.
    prefixed.truncate(NAME_MAX_CHARS);
    prefixed
}

/// The templates service. Cheap to clone.
#[derive(Clone)]
pub struct Templates {
    pg: PgPool,
}

impl Templates {
    pub fn new(pg: PgPool) -> Self {
        Self { pg }
    }

    /// Validates against Meta's rules (422 naming each invalid field), saves the template
    /// as PENDING and queues its submission. 409 `template_exists` when the vendor has a
    /// template of that name and language.
    pub async fn create(
        &self,
        who: &Principal,
        input: TemplateInput,
        meta: &RequestMeta,
    ) -> Result<TemplateView, TemplatesError> {
        let valid = validate(&input).map_err(TemplatesError::Invalid)?;
        let vendor = who.vendor_id;
        let mut tx = self.begin_for(who).await?;
        let template = match repo::insert(
            &mut tx,
            vendor,
            who.user_id,
            &valid,
            &meta_name(vendor, &valid.name),
        )
        .await
        {
            Ok(template) => template,
            Err(error)
                if violates(&error, repo::NAME_LANGUAGE_KEY)
                    || violates(&error, repo::META_NAME_LANGUAGE_KEY) =>
            {
                return Err(TemplatesError::NameTaken)
            }
            Err(error) => return Err(error.into()),
        };
        let entry = AuditEntry {
            vendor_id: Some(vendor),
            actor: Actor::User(who.user_id),
            action: "template.created",
            target_type: Some("template"),
            target_id: Some(template.id.to_string()),
            details: json!({
                "name": template.name,
                "language": template.language,
                "category": template.category,
            }),
        };
        kloyst_audit::record(&mut tx, &entry, meta).await?;
        kloyst_outbox::enqueue_job(
            &mut tx,
            kloyst_queue::streams::JOBS,
            &SubmitTemplate {
                template_id: template.id,
                vendor_id: vendor,
            },
            Some(vendor),
            meta.request_id.clone(),
        )
        .await?;
        tx.commit().await?;
        Ok(template)
    }

    /// The vendor's templates, newest first, cursor-paginated; `status`, `category` and a
    /// `name` prefix filter (combined with AND).
    pub async fn list(
        &self,
        who: &Principal,
        filter: TemplateFilter,
    ) -> Result<Page<TemplateView>, TemplatesError> {
        let mut errors = Vec::new();
        let limit = page::PageRequest {
            limit: filter.limit,
            cursor: None,
        }
        .limit()
        .map_err(|e| errors.push(e))
        .unwrap_or(page::DEFAULT_LIMIT);
        let after = match filter.cursor.as_deref() {
            None => None,
            Some(cursor) => page::decode_time_id(cursor)
                .map_err(|e| errors.push(e))
                .ok(),
        };
        let status = one_of(filter.status.as_deref(), &STATUSES, "status", &mut errors);
        let category = one_of(
            filter.category.as_deref(),
            &CATEGORIES,
            "category",
            &mut errors,
        );
        let name_prefix = filter
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if !errors.is_empty() {
            return Err(TemplatesError::Invalid(errors));
        }
        let list_filter = repo::ListFilter {
            status,
            category,
            name_prefix,
            after,
        };
        let mut tx = self.begin_for(who).await?;
        let mut rows = repo::list(&mut tx, who.vendor_id, limit + 1, &list_filter).await?;
        tx.commit().await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|template| page::encode_time_id(template.created_at, template.id))
        } else {
            None
        };
        Ok(Page {
            data: rows,
            next_cursor,
        })
    }

    /// One template of the caller's vendor; 404 for another vendor's.
    pub async fn get(&self, who: &Principal, id: Uuid) -> Result<TemplateView, TemplatesError> {
        let mut tx = self.begin_for(who).await?;
        let template = repo::get(&mut tx, who.vendor_id, id).await?;
        tx.commit().await?;
        template.ok_or(TemplatesError::NotFound)
    }

    /// The tenant transaction of a request made by `who`.
    async fn begin_for(
        &self,
        who: &Principal,
    ) -> Result<Transaction<'static, Postgres>, TemplatesError> {
        Ok(
            kloyst_db::begin_as_user(&self.pg, who.vendor_id, who.user_id, who.role.as_str())
                .await?,
        )
    }
}

/// A filter value that must be one of `allowed` (any case); blank means no filter.
fn one_of(
    given: Option<&str>,
    allowed: &[&'static str],
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'static str> {
    let given = given.map(str::trim).filter(|g| !g.is_empty())?;
    let found = allowed
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(given));
    if found.is_none() {
        errors.push(FieldError::new(
            field,
            "invalid_value",
            format!("one of {}", allowed.join(", ")),
        ));
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn meta_names_are_vendor_prefixed_and_cut_to_512() {
        let vendor =
            VendorId::from_uuid(Uuid::parse_str("1a2b3c4d-0000-4000-8000-000000000000").unwrap());
        assert_eq!(meta_name(vendor, "order_update"), "v1a2b3c4d_order_update");
        let long = meta_name(vendor, &"x".repeat(512));
        assert_eq!(long.len(), 512);
        assert!(long.starts_with("v1a2b3c4d_xxx"));
    }

    #[test]
    fn filter_values_must_be_known() {
        let mut errors = Vec::new();
        assert_eq!(
            one_of(Some("approved"), &STATUSES, "status", &mut errors),
            Some("APPROVED")
        );
        assert_eq!(one_of(Some(" "), &STATUSES, "status", &mut errors), None);
        assert!(errors.is_empty());
        assert_eq!(one_of(Some("LIVE"), &STATUSES, "status", &mut errors), None);
        assert_eq!(errors[0].field, "status");
    }
}
