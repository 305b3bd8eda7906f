//! `POST /v1/campaigns/:id/retry-failed`: a follow-up campaign (kind RETRY) re-targeting the
//! retryable failures of a finished campaign.
//!
//! Who is re-targeted: the parent's recipients that are FAILED with `retryable = true`,
//! less the contacts that opted out since, less the numbers an earlier RETRY child of the
//! same parent already re-targeted (so calling it twice never sends anyone twice; a retry's
//! own failures are retried by calling retry-failed on that retry). UNKNOWN recipients are
//! **not** re-targeted: Meta may have accepted them (the no-double-send rule), so only a
//! person who checked may send to them again.
//!
//! Like the launch, the price table is loaded between two transactions; inside the second
//! one: the parent locked (two retries of one parent are serialised, so the second sees the
//! first's recipients), the campaign row, the recipients in one `INSERT … SELECT` that also
//! counts them by country, the price, the hold, the audit row and the dispatch job.

use chrono::Utc;
use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_core::{FieldError, VendorId};
use kloyst_identity::Principal;
use kloyst_pricing::{Category, PriceTable};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::campaign_repo::{self, CampaignRow};
use crate::error::{CampaignError, QuoteError};
use crate::launch::{billable_countries, check_idempotency_key, hold, record_quote};
use crate::model::{Quote, QuotedList};
use crate::quote::quote_counts_in;
use crate::repo::{self, CountryCount, TemplateRow};
use crate::views::Launched;
use crate::Campaigns;

/// Statuses after which a campaign's failures no longer change.
const FINISHED: [&str; 3] = ["COMPLETED", "FAILED", "CANCELLED"];
/// Appended to the parent's name when the request names no campaign.
const SUFFIX: &str = " (retry)";
/// The campaign name's limit (the column's CHECK).
const MAX_NAME: usize = 200;

/// `POST /v1/campaigns/:id/retry-failed`'s optional body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Default: the parent's name followed by " (retry)", within 200 characters.
    #[serde(default)]
    pub name: Option<String>,
}

/// The first campaign created under an Idempotency-Key, as a retried key is answered.
#[derive(sqlx::FromRow)]
struct FirstRetry {
    id: Uuid,
    kind: String,
    parent_campaign_id: Option<Uuid>,
    status: String,
    name: String,
    scheduled_at: Option<chrono::DateTime<Utc>>,
    quote: Option<serde_json::Value>,
}

impl Campaigns {
    /// Launches a RETRY campaign of `parent_id`'s retryable failures: its FAILED recipients
    /// with `retryable = true`, less contacts opted out since and numbers an earlier retry of
    /// the same parent re-targeted. UNKNOWN recipients are left out on purpose: Meta may have
    /// accepted them, and resending could deliver twice. Priced and held like a launch. 404 for another vendor's or a
    /// missing parent, 409 `invalid_state` while the parent is still running (its failures
    /// may still change), 422 `no_retryable_failures` when nobody is left to retry, 409
    /// `template_not_approved`, 402 `insufficient_funds`. With an `idempotency_key` already
    /// used for a retry of the same parent, answers that retry (`replayed`).
    pub async fn retry_failed(
        &self,
        who: &Principal,
        parent_id: Uuid,
        request: RetryRequest,
        idempotency_key: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Launched, CampaignError> {
        let vendor = who.vendor_id;
        let now = Utc::now();
        if let Some(key) = idempotency_key {
            check_idempotency_key(key)?;
        }
        let requested_name = check_name(request.name.as_deref())?;

        // Before pricing: a replay answers at once; the parent's template decides the table.
        let mut tx = self.begin_for(who).await?;
        if let Some(key) = idempotency_key {
            if let Some(first) = find_by_key(&mut tx, vendor, key).await? {
                kloyst_db::end_read_only(tx);
                return replay(first, parent_id, requested_name.as_deref());
            }
        }
        let parent = campaign_repo::find(&mut tx, vendor, parent_id)
            .await?
            .ok_or(CampaignError::NotFound)?;
        check_finished(&parent)?;
        let category = approved_template(&mut tx, vendor, parent.template_id)
            .await?
            .1;
        kloyst_db::end_read_only(tx);
        let mut table = self.price_table(vendor, category, now).await?;
        let mut countries = billable_countries(&self.pg, &table).await?;

        let mut tx = self.begin_for(who).await?;
        // Serialises retries (and lifecycle changes) of the parent: a second retry waits for
        // the first to commit and then sees its recipients as already re-targeted.
        let parent = campaign_repo::lock(&mut tx, vendor, parent_id).await?;
        check_finished(&parent)?;
        let (template, category) = approved_template(&mut tx, vendor, parent.template_id).await?;
        if category != table.category() {
            // Meta re-categorised the template meanwhile (rare): price in the new category.
            table = self.price_table(vendor, category, now).await?;
            countries = billable_countries(&self.pg, &table).await?;
        }
        let name = requested_name
            .clone()
            .unwrap_or_else(|| default_name(&parent.name));
        let Some(id) = insert_campaign(&mut tx, who, &parent, &name, idempotency_key).await? else {
            // The key is taken (a concurrent call with the same key committed first, or a
            // launch used it): answer that one if it is this retry.
            drop(tx);
            let key = idempotency_key.unwrap_or_default();
            let mut tx = self.begin_for(who).await?;
            let first = find_by_key(&mut tx, vendor, key).await?;
            kloyst_db::end_read_only(tx);
            let first = first.ok_or(CampaignError::IdempotencyKeyReused)?;
            return replay(first, parent_id, requested_name.as_deref());
        };
        let counts = freeze_failures(&mut tx, vendor, id, parent_id, &countries).await?;
        // `list` is replaced by the parent campaign in the stored and answered quote.
        let no_list = QuotedList {
            id: Uuid::nil(),
            name: String::new(),
        };
        let quote = quote_counts_in(
            &mut tx, vendor, template, category, no_list, &table, &counts, now,
        )
        .await?;
        if quote.recipients.billable == 0 {
            return Err(CampaignError::NoRetryableFailures);
        }
        record_quote(&mut tx, id, &quote).await?;
        // The quote's `list` is meaningless for a retry: its recipients are the parent's.
        sqlx::query("UPDATE campaigns SET quote = $2 WHERE id = $1")
            .bind(id)
            .bind(quote_json(&quote, &parent))
            .execute(&mut *tx)
            .await?;
        if quote.total > Decimal::ZERO {
            hold(&mut tx, vendor, id, &quote).await?;
        }
        let audit = AuditEntry {
            vendor_id: Some(vendor),
            actor: Actor::User(who.user_id),
            action: "campaign.retry_launched",
            target_type: Some("campaign"),
            target_id: Some(id.to_string()),
            details: json!({
                "parent_campaign_id": parent_id,
                "name": name,
                "recipients": quote.recipients.billable,
                "opted_out": quote.recipients.opted_out,
                "skipped": quote.recipients.invalid,
                "quoted_cost": quote.total,
                "currency": quote.currency,
            }),
        };
        kloyst_audit::record(&mut tx, &audit, meta).await?;
        campaign_repo::enqueue_dispatch(&mut tx, vendor, id, meta.request_id.clone()).await?;
        tx.commit().await?;
        tracing::info!(
            vendor.id = %vendor, campaign.id = %id, parent.id = %parent_id,
            recipients = quote.recipients.billable, "retry campaign launched"
        );
        Ok(Launched {
            id,
            status: "QUEUED".to_owned(),
            name,
            scheduled_at: None,
            quote: quote_json(&quote, &parent),
            replayed: false,
        })
    }

    async fn price_table(
        &self,
        vendor: VendorId,
        category: Category,
        at: chrono::DateTime<Utc>,
    ) -> Result<PriceTable, CampaignError> {
        Ok(self
            .pricing
            .price_table(vendor, category.as_str(), at)
            .await
            .map_err(QuoteError::from)?)
    }
}

/// The requested name, trimmed: 1 to 200 characters. `None`: the default applies.
fn check_name(name: Option<&str>) -> Result<Option<String>, CampaignError> {
    let Some(name) = name else {
        return Ok(None);
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(CampaignError::Invalid(vec![FieldError::new(
            "name",
            "length",
            "1 to 200 characters, not blank",
        )]));
    }
    Ok(Some(name.to_owned()))
}

/// "<parent name> (retry)", the parent's name shortened so the whole fits in 200 characters.
fn default_name(parent: &str) -> String {
    let keep = MAX_NAME - SUFFIX.chars().count();
    let base: String = parent.trim().chars().take(keep).collect();
    format!("{}{SUFFIX}", base.trim_end())
}

fn check_finished(parent: &CampaignRow) -> Result<(), CampaignError> {
    if FINISHED.contains(&parent.status.as_str()) {
        Ok(())
    } else {
        Err(CampaignError::InvalidState {
            status: parent.status.clone(),
            action: "retried",
        })
    }
}

/// The parent's template, still APPROVED (409 otherwise), and the category it is priced in.
async fn approved_template(
    conn: &mut PgConnection,
    vendor: VendorId,
    template_id: Uuid,
) -> Result<(TemplateRow, Category), CampaignError> {
    let template = repo::template(conn, vendor, template_id)
        .await?
        .ok_or(CampaignError::Quote(QuoteError::TemplateNotFound))?;
    if template.status != "APPROVED" {
        return Err(CampaignError::TemplateNotApproved {
            status: template.status,
        });
    }
    let category = template
        .meta_category
        .as_deref()
        .unwrap_or(&template.category);
    let category = Category::parse(category).map_err(QuoteError::from)?;
    Ok((template, category))
}

async fn find_by_key(
    conn: &mut PgConnection,
    vendor: VendorId,
    key: &str,
) -> sqlx::Result<Option<FirstRetry>> {
    sqlx::query_as(
        "SELECT id, kind, parent_campaign_id, status, name, scheduled_at, quote
           FROM campaigns WHERE vendor_id = $1 AND idempotency_key = $2",
    )
    .bind(vendor.as_uuid())
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// A retry of the same parent (under the same name, when one is asked for) gets the first
/// answer; anything else under the key (a launch, another parent) is refused.
fn replay(
    first: FirstRetry,
    parent_id: Uuid,
    name: Option<&str>,
) -> Result<Launched, CampaignError> {
    let same = first.kind == "RETRY"
        && first.parent_campaign_id == Some(parent_id)
        && name.is_none_or(|name| name == first.name);
    if !same {
        return Err(CampaignError::IdempotencyKeyReused);
    }
    Ok(Launched {
        id: first.id,
        status: first.status,
        name: first.name,
        scheduled_at: first.scheduled_at,
        quote: first.quote.unwrap_or_default(),
        replayed: true,
    })
}

/// The RETRY campaign row, QUEUED, from the parent's template, parameters and sending number.
/// `None` when the idempotency key is already taken.
async fn insert_campaign(
    conn: &mut PgConnection,
    who: &Principal,
    parent: &CampaignRow,
    name: &str,
    idempotency_key: Option<&str>,
) -> Result<Option<Uuid>, CampaignError> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO campaigns (vendor_id, kind, name, template_id, list_id, parent_campaign_id,
                                phone_number_id, parameters, status, queued_at, idempotency_key,
                                created_by)
         SELECT vendor_id, 'RETRY', $3, template_id, NULL, id, phone_number_id, parameters,
                'QUEUED', now(), $4, $5
           FROM campaigns WHERE vendor_id = $1 AND id = $2
         ON CONFLICT ON CONSTRAINT campaigns_vendor_id_idempotency_key_key DO NOTHING
         RETURNING id",
    )
    .bind(who.vendor_id.as_uuid())
    .bind(parent.id)
    .bind(name)
    .bind(idempotency_key)
    .bind(who.user_id.as_uuid())
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// The parent's retryable failures not yet re-targeted, frozen as the retry's recipients
/// (dense seq 1..N in the parent's order; contact, number, country and explicit parameters
/// kept) when not opted out since and of a billable country, in one statement. Returns
/// every candidate counted by country, split by opt-out, for the price.
async fn freeze_failures(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    parent: Uuid,
    countries: &[String],
) -> sqlx::Result<Vec<CountryCount>> {
    // A contact deleted since (no row) has not opted out: its frozen number is retried.
    sqlx::query_as(
        "WITH retargeted AS (
             SELECT kr.mobile
               FROM campaigns k
               JOIN campaign_recipients kr ON kr.campaign_id = k.id AND kr.vendor_id = k.vendor_id
              WHERE k.vendor_id = $2 AND k.parent_campaign_id = $3 AND k.kind = 'RETRY'
         ), candidates AS MATERIALIZED (
             SELECT r.seq, r.contact_id, r.mobile, r.country, r.params,
                    coalesce(c.opted_out, false) AS opted_out
               FROM campaign_recipients r
               LEFT JOIN contacts c ON c.vendor_id = r.vendor_id AND c.id = r.contact_id
              WHERE r.campaign_id = $3 AND r.vendor_id = $2
                AND r.status = 'FAILED' AND r.retryable
                AND NOT EXISTS (SELECT 1 FROM retargeted t WHERE t.mobile = r.mobile)
         ), frozen AS (
             INSERT INTO campaign_recipients (campaign_id, seq, vendor_id, contact_id, mobile,
                                              country, params)
             SELECT $1, (row_number() OVER (ORDER BY seq))::integer, $2, contact_id, mobile,
                    country, params
               FROM candidates
              WHERE NOT opted_out AND country = ANY($4)
         )
         SELECT country,
                count(*) FILTER (WHERE NOT opted_out) AS reachable,
                count(*) FILTER (WHERE opted_out)     AS opted_out
           FROM candidates
          GROUP BY country",
    )
    .bind(id)
    .bind(vendor.as_uuid())
    .bind(parent)
    .bind(countries)
    .fetch_all(conn)
    .await
}

/// The quote as stored and answered for a retry: `list` is null and `parent_campaign` names
/// the campaign whose failures are retried. `recipients.members` counts the candidates
/// (retryable failures not yet re-targeted).
fn quote_json(quote: &Quote, parent: &CampaignRow) -> serde_json::Value {
    let mut value = serde_json::to_value(quote).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("list".to_owned(), serde_json::Value::Null);
        object.insert(
            "parent_campaign".to_owned(),
            json!({ "id": parent.id, "name": parent.name }),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_name_keeps_the_suffix_within_200_characters() {
        assert_eq!(default_name("  Diwali "), "Diwali (retry)");
        let long = "é".repeat(200);
        let name = default_name(&long);
        assert_eq!(name.chars().count(), 200);
        assert!(name.ends_with(" (retry)"));
    }

    #[test]
    fn a_requested_name_is_trimmed_and_bounded() {
        assert_eq!(check_name(None).ok(), Some(None));
        assert_eq!(
            check_name(Some("  Again ")).ok(),
            Some(Some("Again".to_owned()))
        );
        for bad in ["", "   ", &"x".repeat(201)] {
            assert!(
                matches!(check_name(Some(bad)), Err(CampaignError::Invalid(ref e)) if e[0].field == "name")
            );
        }
    }

    fn first(kind: &str, parent: Option<Uuid>, name: &str) -> FirstRetry {
        FirstRetry {
            id: Uuid::nil(),
            kind: kind.to_owned(),
            parent_campaign_id: parent,
            status: "QUEUED".to_owned(),
            name: name.to_owned(),
            scheduled_at: None,
            quote: None,
        }
    }

    #[test]
    fn a_key_replays_only_a_retry_of_the_same_parent() {
        let parent = Uuid::new_v4();
        let replayed = replay(first("RETRY", Some(parent), "A (retry)"), parent, None);
        assert!(matches!(replayed, Ok(Launched { replayed: true, .. })));
        assert!(replay(first("RETRY", Some(parent), "A"), parent, Some("A")).is_ok());
        for (kind, of, name) in [
            ("BULK", None, None),
            ("RETRY", Some(Uuid::new_v4()), None),
            ("RETRY", Some(parent), Some("Other")),
        ] {
            assert!(matches!(
                replay(first(kind, of, "A"), parent, name),
                Err(CampaignError::IdempotencyKeyReused)
            ));
        }
    }
}
