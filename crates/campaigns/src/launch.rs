//! The launch: quote, hold and frozen recipients in one tenant transaction.
//!
//! The price table is loaded between two transactions (like [`crate::Quotes::quote`]) so a
//! launch never holds one pooled connection while waiting for another. Inside the launch
//! transaction: the quote, the campaign row (its idempotency key unique per vendor), the hold
//! (the wallet row lock serialises launches racing for the same money), the recipients in
//! one `INSERT … SELECT`, the audit row and, for a campaign that starts now, its dispatch job.

use chrono::{DateTime, Duration, Utc};
use kloyst_audit::{Actor, AuditEntry, RequestMeta};
use kloyst_billing::{BillingError, HoldRequest};
use kloyst_core::{FieldError, VendorId};
use kloyst_identity::Principal;
use kloyst_pricing::{Category, PriceTable};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::campaign_repo;
use crate::error::{CampaignError, QuoteError};
use crate::model::Quote;
use crate::quote::quote_counted_in;
use crate::repo::CountryCount;
use crate::views::{LaunchRequest, Launched};
use crate::Campaigns;

/// A `scheduled_at` this far in the past is taken as "now" (clock skew, a slow client).
const PAST_TOLERANCE: Duration = Duration::minutes(1);
/// How far ahead a campaign may be scheduled.
const MAX_SCHEDULE_AHEAD: Duration = Duration::days(30);

/// The template as the launch checks it.
#[derive(sqlx::FromRow)]
struct TemplateCheck {
    status: String,
    param_count: i16,
    category: String,
    meta_category: Option<String>,
}

/// A request that passed the checks that need no database.
struct Checked {
    name: String,
    scheduled_at: Option<DateTime<Utc>>,
}

impl Campaigns {
    /// Launches `request` for the caller's vendor. With an `idempotency_key` already used by
    /// the vendor, answers the first launch (`replayed`) when name, template and list match,
    /// else `IdempotencyKeyReused`; nothing new is created either way.
    pub async fn launch(
        &self,
        who: &Principal,
        request: LaunchRequest,
        idempotency_key: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Launched, CampaignError> {
        let vendor = who.vendor_id;
        let now = Utc::now();
        if let Some(key) = idempotency_key {
            check_idempotency_key(key)?;
        }
        let checked = check_request(&request, now)?;

        // Before pricing: a replay answers at once; the template decides the price table.
        let mut tx = self.begin_for(who).await?;
        if let Some(key) = idempotency_key {
            if let Some(first) = find_by_key(&mut tx, vendor, key).await? {
                kloyst_db::end_read_only(tx);
                return replay(first, &checked.name, &request);
            }
        }
        let category = check_template(&mut tx, vendor, &request).await?;
        kloyst_db::end_read_only(tx);
        let table = self
            .pricing
            .price_table(vendor, category.as_str(), now)
            .await
            .map_err(QuoteError::from)?;

        // Meta may re-categorise the template in between; the quote then reloads its table
        // and the counts below no longer match it: refused as `list_changed`, retryable.
        let countries = billable_countries(&self.pg, &table).await?;
        let status = if checked.scheduled_at.is_some() {
            "SCHEDULED"
        } else {
            "QUEUED"
        };

        let mut tx = self.begin_for(who).await?;
        let inserted = insert_campaign(
            &mut tx,
            who,
            &request,
            &checked,
            status,
            idempotency_key,
            now,
        )
        .await?;
        let Some(id) = inserted else {
            // A concurrent launch with the same key committed first (the insert waited for
            // it): answer that one.
            drop(tx);
            let key = idempotency_key.unwrap_or_default();
            let mut tx = self.begin_for(who).await?;
            let first = find_by_key(&mut tx, vendor, key).await?;
            kloyst_db::end_read_only(tx);
            let first = first.ok_or(CampaignError::IdempotencyKeyReused)?;
            return replay(first, &checked.name, &request);
        };
        // One statement reads the list once: it freezes the billable members as recipients
        // and counts every member by country for the quote, from the same snapshot.
        let counts = freeze_recipients(&mut tx, vendor, id, request.list_id, &countries).await?;
        let quote = quote_counted_in(
            &mut tx,
            &self.pricing,
            &table,
            vendor,
            request.template_id,
            request.list_id,
            &counts,
            now,
        )
        .await?;
        if quote.template.status != "APPROVED" {
            return Err(CampaignError::TemplateNotApproved {
                status: quote.template.status,
            });
        }
        if quote.recipients.billable == 0 {
            return Err(CampaignError::NoRecipients);
        }
        let frozen: i64 = counts
            .iter()
            .filter(|row| row.country.as_ref().is_some_and(|c| countries.contains(c)))
            .map(|row| row.reachable)
            .sum();
        if frozen != quote.recipients.billable {
            tracing::info!(
                vendor.id = %vendor, list.id = %request.list_id, quoted = quote.recipients.billable,
                frozen, "launch refused: the template's pricing changed during the launch"
            );
            return Err(CampaignError::ListChanged);
        }
        record_quote(&mut tx, id, &quote).await?;
        if quote.total > Decimal::ZERO {
            hold(&mut tx, vendor, id, &quote).await?;
        }
        let audit = AuditEntry {
            vendor_id: Some(vendor),
            actor: Actor::User(who.user_id),
            action: "campaign.launched",
            target_type: Some("campaign"),
            target_id: Some(id.to_string()),
            details: json!({
                "name": checked.name,
                "status": status,
                "template_id": request.template_id,
                "list_id": request.list_id,
                "recipients": quote.recipients.billable,
                "quoted_cost": quote.total,
                "currency": quote.currency,
                "scheduled_at": checked.scheduled_at,
            }),
        };
        kloyst_audit::record(&mut tx, &audit, meta).await?;
        if status == "QUEUED" {
            campaign_repo::enqueue_dispatch(&mut tx, vendor, id, meta.request_id.clone()).await?;
        }
        tx.commit().await?;
        tracing::info!(
            vendor.id = %vendor, campaign.id = %id, status, recipients = frozen,
            "campaign launched"
        );
        Ok(Launched {
            id,
            status: status.to_owned(),
            name: checked.name,
            scheduled_at: checked.scheduled_at,
            quote: serde_json::to_value(&quote).unwrap_or_default(),
            replayed: false,
        })
    }
}

/// 1-255 printable ASCII characters.
pub(crate) fn check_idempotency_key(key: &str) -> Result<(), CampaignError> {
    let printable = key.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if key.is_empty() || key.len() > 255 || !printable {
        return Err(CampaignError::IdempotencyKeyInvalid);
    }
    Ok(())
}

/// The name, and when to start: `None` = now. A time up to a minute ago counts as now.
fn check_request(request: &LaunchRequest, now: DateTime<Utc>) -> Result<Checked, CampaignError> {
    let mut errors = Vec::new();
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new(
            "name",
            "length",
            "1 to 200 characters, not blank",
        ));
    }
    let scheduled_at = match request.scheduled_at {
        None => None,
        Some(at) if at <= now => {
            if now - at > PAST_TOLERANCE {
                errors.push(FieldError::new(
                    "scheduled_at",
                    "in_the_past",
                    "must be in the future",
                ));
            }
            None
        }
        Some(at) => {
            if at - now > MAX_SCHEDULE_AHEAD {
                errors.push(FieldError::new(
                    "scheduled_at",
                    "too_far",
                    "must be within 30 days",
                ));
            }
            Some(at)
        }
    };
    if errors.is_empty() {
        Ok(Checked { name, scheduled_at })
    } else {
        Err(CampaignError::Invalid(errors))
    }
}

/// The template exists, is APPROVED and the parameters map its placeholders. Returns the
/// category it is priced in.
async fn check_template(
    conn: &mut PgConnection,
    vendor: VendorId,
    request: &LaunchRequest,
) -> Result<Category, CampaignError> {
    let template: TemplateCheck = sqlx::query_as(
        "SELECT status, param_count, category, meta_category
           FROM templates WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(request.template_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CampaignError::Quote(QuoteError::TemplateNotFound))?;
    if template.status != "APPROVED" {
        return Err(CampaignError::TemplateNotApproved {
            status: template.status,
        });
    }
    let param_count = usize::try_from(template.param_count).unwrap_or_default();
    request
        .parameters
        .validate(param_count)
        .map_err(CampaignError::Invalid)?;
    // Before the campaign row references it (its foreign key would refuse an unknown list).
    let list_exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM contact_lists WHERE vendor_id = $1 AND id = $2)",
    )
    .bind(vendor.as_uuid())
    .bind(request.list_id)
    .fetch_one(&mut *conn)
    .await?;
    if !list_exists {
        return Err(QuoteError::ListNotFound.into());
    }
    let category = template
        .meta_category
        .as_deref()
        .unwrap_or(&template.category);
    Ok(Category::parse(category).map_err(QuoteError::from)?)
}

/// Every country `table` prices: exactly the quote's billable rule (a member with a country
/// the card prices), so the recipients frozen are the recipients quoted. Read from the ~250
/// known countries rather than by scanning the list a second time.
pub(crate) async fn billable_countries(
    pg: &sqlx::PgPool,
    table: &PriceTable,
) -> Result<Vec<String>, CampaignError> {
    let known: Vec<String> = sqlx::query_scalar("SELECT country FROM country_markets")
        .fetch_all(pg)
        .await?;
    Ok(known
        .into_iter()
        .filter(|country| table.price(country).is_ok())
        .collect())
}

#[allow(clippy::too_many_arguments)] // one row's columns, each checked by the caller
async fn insert_campaign(
    conn: &mut PgConnection,
    who: &Principal,
    request: &LaunchRequest,
    checked: &Checked,
    status: &str,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, CampaignError> {
    let parameters = serde_json::to_value(&request.parameters).unwrap_or_default();
    let queued_at = (status == "QUEUED").then_some(now);
    // A concurrent launch with the same key: the insert waits for it, then does nothing.
    // The quote's figures follow in `record_quote`, in the same transaction.
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO campaigns (vendor_id, kind, name, template_id, list_id, parameters, status,
                                scheduled_at, queued_at, idempotency_key, created_by)
         VALUES ($1, 'BULK', $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT ON CONSTRAINT campaigns_vendor_id_idempotency_key_key DO NOTHING
         RETURNING id",
    )
    .bind(who.vendor_id.as_uuid())
    .bind(&checked.name)
    .bind(request.template_id)
    .bind(request.list_id)
    .bind(parameters)
    .bind(status)
    .bind(checked.scheduled_at)
    .bind(queued_at)
    .bind(idempotency_key)
    .bind(who.user_id.as_uuid())
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

/// The quote's counts and money on the campaign row.
pub(crate) async fn record_quote(
    conn: &mut PgConnection,
    id: Uuid,
    quote: &Quote,
) -> Result<(), CampaignError> {
    sqlx::query(
        "UPDATE campaigns
            SET total_count = $2, pending_count = $2, opted_out_count = $3, skipped_count = $4,
                currency = $5, quoted_cost = $6, quote = $7
          WHERE id = $1",
    )
    .bind(id)
    .bind(count(quote.recipients.billable))
    .bind(count(quote.recipients.opted_out))
    .bind(count(quote.recipients.invalid))
    .bind(&quote.currency)
    .bind(quote.total)
    .bind(serde_json::to_value(quote).unwrap_or_default())
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts are bounded by a list's size; the column is an integer.
pub(crate) fn count(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) async fn hold(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    quote: &Quote,
) -> Result<(), CampaignError> {
    hold_amount(conn, vendor, id, quote.total).await
}

/// Holds `amount` for campaign `id` (under the wallet's row lock); 402 with the shortfall
/// when the available balance cannot cover it.
pub(crate) async fn hold_amount(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    amount: Decimal,
) -> Result<(), CampaignError> {
    let request = HoldRequest {
        amount,
        reference: format!("hold:campaign:{id}"),
        campaign_id: Some(id),
    };
    let placed = kloyst_billing::hold_in(conn, vendor, request).await;
    match placed {
        Ok(_) => Ok(()),
        Err(BillingError::InsufficientFunds { shortfall }) => {
            Err(CampaignError::InsufficientFunds {
                shortfall,
                required: amount,
                available: (amount - shortfall).max(Decimal::ZERO),
            })
        }
        Err(other) => Err(other.into()),
    }
}

/// The recipients, frozen: one row per member not opted out whose country is billable,
/// numbered 1..N densely in one statement. Returns how many.
async fn freeze_recipients(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
    list: Uuid,
    countries: &[String],
) -> sqlx::Result<Vec<CountryCount>> {
    // `row_number() OVER ()`: seq only has to be dense; ordering the rows would cost a sort.
    sqlx::query_as(
        "WITH members AS MATERIALIZED (
             SELECT c.id, c.mobile, c.country, c.opted_out
               FROM contact_list_members m
               JOIN contacts c ON c.vendor_id = m.vendor_id AND c.id = m.contact_id
              WHERE m.vendor_id = $2 AND m.list_id = $3
         ), frozen AS (
             INSERT INTO campaign_recipients (campaign_id, seq, vendor_id, contact_id, mobile, country)
             SELECT $1, (row_number() OVER ())::integer, $2, id, mobile, country
               FROM members
              WHERE NOT opted_out AND country = ANY($4)
         )
         SELECT country,
                count(*) FILTER (WHERE NOT opted_out) AS reachable,
                count(*) FILTER (WHERE opted_out)     AS opted_out
           FROM members
          GROUP BY country",
    )
    .bind(id)
    .bind(vendor.as_uuid())
    .bind(list)
    .bind(countries)
    .fetch_all(conn)
    .await
}

/// The first launch under a key, as the retry is answered.
#[derive(sqlx::FromRow)]
struct FirstLaunch {
    id: Uuid,
    status: String,
    name: String,
    template_id: Uuid,
    list_id: Option<Uuid>,
    scheduled_at: Option<DateTime<Utc>>,
    quote: Option<serde_json::Value>,
}

async fn find_by_key(
    conn: &mut PgConnection,
    vendor: VendorId,
    key: &str,
) -> sqlx::Result<Option<FirstLaunch>> {
    sqlx::query_as(
        "SELECT id, status, name, template_id, list_id, scheduled_at, quote
           FROM campaigns WHERE vendor_id = $1 AND idempotency_key = $2",
    )
    .bind(vendor.as_uuid())
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// The same launch again (same name, template and list) gets the first answer; anything
/// else under the same key is refused.
fn replay(
    first: FirstLaunch,
    name: &str,
    request: &LaunchRequest,
) -> Result<Launched, CampaignError> {
    let same = first.name == name
        && first.template_id == request.template_id
        && first.list_id == Some(request.list_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(scheduled_at: Option<DateTime<Utc>>) -> LaunchRequest {
        LaunchRequest {
            name: "  Diwali  ".to_owned(),
            template_id: Uuid::nil(),
            list_id: Uuid::nil(),
            parameters: Default::default(),
            scheduled_at,
        }
    }

    #[test]
    fn a_time_just_past_is_now_and_the_window_is_thirty_days() {
        let now = Utc::now();
        let checked = check_request(&request(None), now).unwrap_or_else(|_| unreachable!());
        assert_eq!(checked.name, "Diwali");
        assert_eq!(checked.scheduled_at, None);
        let just_past = check_request(&request(Some(now - Duration::seconds(30))), now);
        assert!(matches!(
            just_past,
            Ok(Checked {
                scheduled_at: None,
                ..
            })
        ));
        let later = now + Duration::hours(2);
        let scheduled = check_request(&request(Some(later)), now);
        assert!(matches!(scheduled, Ok(Checked { scheduled_at: Some(at), .. }) if at == later));
        for bad in [now - Duration::minutes(5), now + Duration::days(31)] {
            let refused = check_request(&request(Some(bad)), now);
            assert!(
                matches!(refused, Err(CampaignError::Invalid(ref e)) if e[0].field == "scheduled_at")
            );
        }
    }

    #[test]
    fn idempotency_keys_are_short_printable_ascii() {
        assert!(check_idempotency_key("launch-2026-11-22 #1").is_ok());
        for bad in ["", "é", "tab\there", &"k".repeat(256)] {
            assert!(check_idempotency_key(bad).is_err(), "{bad:?}");
        }
    }
}
