//! `POST /v1/messages`: one template message, priced, held and sent like a one-recipient
//! campaign.
//!
//! A single message is a campaign of kind `SINGLE` with one recipient (seq 1) whose body
//! parameters are rendered here, at submission, and stored on the recipient row. From there
//! it takes exactly the campaign path: the dispatch job through the outbox, the worker-pool's
//! claim (SENDING with an attempt id before the Meta call), the shared send rate, the same
//! error handling and the same no-double-send rule. Its id is the campaign's id.
//!
//! The price is the pricing engine's for the recipient's market and the template's priced
//! category (what the debit path charges); that amount is held on the wallet in the
//! submission's transaction (402 with the shortfall when it cannot be).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kloyst_audit::{AuditEntry, RequestMeta};
use kloyst_contacts::phone::{self, NormalizedNumber};
use kloyst_core::{FieldError, VendorId};
use kloyst_identity::Caller;
use kloyst_pricing::{Category, Price};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::campaign_repo;
use crate::error::{CampaignError, QuoteError};
use crate::launch::{check_idempotency_key, hold_amount};
use crate::params::{Parameter, Parameters};
use crate::Campaigns;

/// `POST /v1/messages`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// The recipient's number in any common format; national numbers are read in the
    /// vendor's default country.
    pub to: String,
    pub template_id: Uuid,
    /// `["Asha", "50%"]`, or `{"1": "Asha", "2": {"attribute": "city", "fallback": "you"}}`:
    /// strings are literals; attributes are read from the vendor's contact with that number.
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// What a single message costs, as stored in `campaigns.quote`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePrice {
    pub market: String,
    pub country: String,
    pub category_priced: Category,
    pub rate_card_id: Uuid,
    /// Meta's cost plus Kloyst's margin, in `currency`: the amount held.
    pub price: Decimal,
    pub meta_cost: Decimal,
    pub margin: Decimal,
    pub currency: String,
}

impl From<(&Price, &str)> for MessagePrice {
    fn from((price, country): (&Price, &str)) -> Self {
        Self {
            market: price.market.clone(),
            country: country.to_owned(),
            category_priced: price.category,
            rate_card_id: price.rate_card_id,
            price: price.total,
            meta_cost: price.meta_cost,
            margin: price.margin,
            currency: price.wallet_currency.clone(),
        }
    }
}

/// The answer to `POST /v1/messages` (202), or the first one's for a retried key (200).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageAccepted {
    /// The message's id (`GET /v1/messages/{id}`); also its campaign's.
    pub id: Uuid,
    /// As in [`SingleMessageView::status`].
    pub status: String,
    /// E.164 digits without `+`.
    pub to: String,
    pub template_id: Uuid,
    pub price: MessagePrice,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub replayed: bool,
}

/// `GET /v1/messages/{id}`: a single message's progress, from its recipient row and, once
/// sent, its message log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SingleMessageView {
    pub id: Uuid,
    /// QUEUED (not yet sent), SENDING, SENT, DELIVERED, READ, FAILED, UNKNOWN (a send whose
    /// outcome is not known: never resent), SKIPPED (opted out before the send) or CANCELLED.
    pub status: String,
    pub to: String,
    pub country: Option<String>,
    pub template_id: Uuid,
    pub wa_message_id: Option<String>,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    /// The amount held at submission.
    pub quoted_price: Decimal,
    /// What was charged, once Meta reported the message billable.
    pub cost: Option<Decimal>,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SingleRow {
    id: Uuid,
    recipient_status: String,
    log_status: Option<String>,
    mobile: String,
    country: Option<String>,
    template_id: Uuid,
    wa_message_id: Option<String>,
    error_code: Option<i32>,
    error_message: Option<String>,
    quoted_cost: Decimal,
    cost: Option<Decimal>,
    currency: String,
    quote: Option<Value>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
}

impl SingleRow {
    /// The message log's status once Meta reported one (its log is PENDING from the send's
    /// acceptance until the first status webhook); before, the recipient's dispatch state.
    fn status(&self) -> String {
        if let Some(status) = self.log_status.as_ref().filter(|s| *s != "PENDING") {
            return status.clone();
        }
        match self.recipient_status.as_str() {
            "PENDING" => "QUEUED".to_owned(),
            other => other.to_owned(),
        }
    }

    fn into_view(self) -> SingleMessageView {
        SingleMessageView {
            status: self.status(),
            id: self.id,
            to: self.mobile,
            country: self.country,
            template_id: self.template_id,
            wa_message_id: self.wa_message_id,
            error_code: self.error_code,
            error_message: self.error_message,
            quoted_price: self.quoted_cost,
            cost: self.cost,
            currency: self.currency,
            created_at: self.created_at,
            sent_at: self.sent_at,
            delivered_at: self.delivered_at,
            read_at: self.read_at,
            failed_at: self.failed_at,
        }
    }
}

const SINGLE_COLUMNS: &str =
    "c.id, r.status AS recipient_status, l.status AS log_status, r.mobile, \
     r.country, c.template_id, coalesce(l.wa_message_id, r.wa_message_id) AS wa_message_id, \
     coalesce(l.error_code, r.error_code) AS error_code, \
     coalesce(l.error_message, r.error_message) AS error_message, c.quoted_cost, l.cost, \
     c.currency, c.quote, c.created_at, coalesce(l.sent_at, r.sent_at) AS sent_at, \
     l.delivered_at, l.read_at, coalesce(l.failed_at, r.failed_at) AS failed_at";

/// The template as a single message checks it.
#[derive(sqlx::FromRow)]
struct TemplateCheck {
    status: String,
    param_count: i16,
    category: String,
    meta_category: Option<String>,
}

/// The recipient's contact, when the vendor has one with that number.
#[derive(sqlx::FromRow)]
struct ContactCheck {
    id: Uuid,
    opted_out: bool,
    attributes: Value,
}

impl Campaigns {
    /// Submits one template message for the caller's vendor: validated, priced, held and
    /// queued for dispatch in one tenant transaction. With an `idempotency_key` the vendor
    /// used before, answers the first submission (`replayed`) when recipient and template
    /// match, else `IdempotencyKeyReused`.
    pub async fn send_message(
        &self,
        who: &Caller,
        request: SendMessageRequest,
        idempotency_key: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<MessageAccepted, CampaignError> {
        let vendor = who.vendor_id();
        let now = Utc::now();
        if let Some(key) = idempotency_key {
            check_idempotency_key(key)?;
        }
        let parameters = parse_parameters(request.parameters.as_ref())?;

        let mut tx = who.begin(&self.pg).await?;
        let number = recipient_number(&mut tx, vendor, &request.to).await?;
        if let Some(key) = idempotency_key {
            if let Some(first) = find_by_key(&mut tx, vendor, key).await? {
                kloyst_db::end_read_only(tx);
                return replay(first, &number, &request);
            }
        }
        let template = check_template(&mut tx, vendor, request.template_id, &parameters).await?;
        let contact = contact_of(&mut tx, vendor, &number.mobile).await?;
        kloyst_db::end_read_only(tx);
        if contact.as_ref().is_some_and(|c| c.opted_out) {
            return Err(CampaignError::RecipientOptedOut);
        }
        let values = render(&parameters, contact.as_ref())?;
        let category = Category::parse(
            template
                .meta_category
                .as_deref()
                .unwrap_or(&template.category),
        )
        .map_err(QuoteError::from)?;
        let table = self
            .pricing
            .price_table(vendor, category.as_str(), now)
            .await
            .map_err(QuoteError::from)?;
        let price = priced(&number, |country| table.price(country).ok())?;

        let mut tx = who.begin(&self.pg).await?;
        let inserted = insert_single(
            &mut tx,
            who,
            &request,
            &number,
            contact.as_ref().map(|c| c.id),
            &values,
            &price,
            idempotency_key,
            now,
        )
        .await?;
        let Some(id) = inserted else {
            // A concurrent submission with the same key committed first: answer that one.
            drop(tx);
            let key = idempotency_key.unwrap_or_default();
            let mut tx = who.begin(&self.pg).await?;
            let first = find_by_key(&mut tx, vendor, key).await?;
            kloyst_db::end_read_only(tx);
            let first = first.ok_or(CampaignError::IdempotencyKeyReused)?;
            return replay(first, &number, &request);
        };
        if price.price > Decimal::ZERO {
            hold_amount(&mut tx, vendor, id, price.price).await?;
        }
        let audit = AuditEntry {
            vendor_id: Some(vendor),
            actor: who.audit_actor(),
            action: "message.submitted",
            target_type: Some("message"),
            target_id: Some(id.to_string()),
            details: json!({
                "to": number.mobile,
                "template_id": request.template_id,
                "price": price.price,
                "currency": price.currency,
            }),
        };
        kloyst_audit::record(&mut tx, &audit, meta).await?;
        campaign_repo::enqueue_dispatch(&mut tx, vendor, id, meta.request_id.clone()).await?;
        tx.commit().await?;
        tracing::info!(vendor.id = %vendor, message.id = %id, market = %price.market, "single message queued");
        Ok(MessageAccepted {
            id,
            status: "QUEUED".to_owned(),
            to: number.mobile,
            template_id: request.template_id,
            price,
            created_at: now,
            replayed: false,
        })
    }

    /// One single message of the caller's vendor (404 for anything else, a campaign's id
    /// included).
    pub async fn message(
        &self,
        who: &Caller,
        id: Uuid,
    ) -> Result<SingleMessageView, CampaignError> {
        let mut tx = who.begin(&self.pg).await?;
        let row = single_row(&mut tx, who.vendor_id(), id).await?;
        kloyst_db::end_read_only(tx);
        row.map(SingleRow::into_view)
            .ok_or(CampaignError::MessageNotFound)
    }
}

/// Strings, `{literal}` or `{attribute, fallback?}` by placeholder number, or a list of
/// strings for `{{1}}..{{n}}`. Nothing (or null) for a template without parameters.
fn parse_parameters(raw: Option<&Value>) -> Result<Parameters, CampaignError> {
    let literal = |text: &str| Parameter::Literal {
        literal: text.to_owned(),
    };
    let shape = || {
        CampaignError::Invalid(vec![FieldError::new(
            "parameters",
            "format",
            "a list of strings, or an object from placeholder number to a string, {\"literal\"} or {\"attribute\", \"fallback\"}",
        )])
    };
    let mut map = BTreeMap::new();
    match raw {
        None | Some(Value::Null) => {}
        Some(Value::Array(values)) => {
            for (n, value) in values.iter().enumerate() {
                let text = value.as_str().ok_or_else(shape)?;
                map.insert((n + 1).to_string(), literal(text));
            }
        }
        Some(Value::Object(entries)) => {
            let mut errors = Vec::new();
            for (key, value) in entries {
                let parameter = match value {
                    Value::String(text) => Some(literal(text)),
                    other => serde_json::from_value::<Parameter>(other.clone()).ok(),
                };
                match parameter {
                    Some(parameter) => {
                        map.insert(key.clone(), parameter);
                    }
                    None => errors.push(FieldError::new(
                        format!("parameters.{key}"),
                        "format",
                        "a string, {\"literal\"} or {\"attribute\", \"fallback\"}",
                    )),
                }
            }
            if !errors.is_empty() {
                return Err(CampaignError::Invalid(errors));
            }
        }
        Some(_) => return Err(shape()),
    }
    Ok(Parameters(map))
}

/// `to` as stored (E.164 digits), read in the vendor's default country; 422 on `to` with
/// the phone parser's reason otherwise.
async fn recipient_number(
    conn: &mut PgConnection,
    vendor: VendorId,
    to: &str,
) -> Result<NormalizedNumber, CampaignError> {
    let code: Option<String> =
        sqlx::query_scalar("SELECT default_country FROM vendors WHERE id = $1")
            .bind(vendor.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
    let region = code
        .as_deref()
        .and_then(phone::parse_region)
        .unwrap_or(phone::Region::IN);
    phone::normalize(to, region).map_err(|reason| {
        CampaignError::Invalid(vec![FieldError::new(
            "to",
            reason.code().to_ascii_lowercase(),
            reason.message(),
        )])
    })
}

/// The template exists, is APPROVED, and `parameters` map exactly its placeholders.
async fn check_template(
    conn: &mut PgConnection,
    vendor: VendorId,
    template_id: Uuid,
    parameters: &Parameters,
) -> Result<TemplateCheck, CampaignError> {
    let template: TemplateCheck = sqlx::query_as(
        "SELECT status, param_count, category, meta_category
           FROM templates WHERE vendor_id = $1 AND id = $2",
    )
    .bind(vendor.as_uuid())
    .bind(template_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CampaignError::Quote(QuoteError::TemplateNotFound))?;
    if template.status != "APPROVED" {
        return Err(CampaignError::TemplateNotApproved {
            status: template.status,
        });
    }
    let param_count = usize::try_from(template.param_count).unwrap_or_default();
    parameters
        .validate(param_count)
        .map_err(CampaignError::Invalid)?;
    Ok(template)
}

async fn contact_of(
    conn: &mut PgConnection,
    vendor: VendorId,
    mobile: &str,
) -> sqlx::Result<Option<ContactCheck>> {
    sqlx::query_as(
        "SELECT id, opted_out, attributes FROM contacts WHERE vendor_id = $1 AND mobile = $2",
    )
    .bind(vendor.as_uuid())
    .bind(mobile)
    .fetch_optional(conn)
    .await
}

/// The body parameters, rendered now from the contact's attributes (fallbacks and literals
/// for a number that is not a contact).
fn render(
    parameters: &Parameters,
    contact: Option<&ContactCheck>,
) -> Result<Vec<String>, CampaignError> {
    let empty = Map::new();
    let attributes = match contact.map(|c| &c.attributes) {
        Some(Value::Object(map)) => map,
        _ => &empty,
    };
    parameters.render(attributes).ok_or_else(|| {
        CampaignError::Invalid(vec![FieldError::new(
            "parameters",
            "attribute_missing",
            "an attribute has no value for this recipient and no fallback was given",
        )])
    })
}

/// The recipient's price, or 422 on `to` when its country is not one the rate card prices
/// for the template's category.
fn priced(
    number: &NormalizedNumber,
    price_of: impl Fn(&str) -> Option<Price>,
) -> Result<MessagePrice, CampaignError> {
    let country = number.country.as_deref().unwrap_or_default();
    match price_of(country) {
        Some(price) if !country.is_empty() => Ok(MessagePrice::from((&price, country))),
        _ => Err(CampaignError::Invalid(vec![FieldError::new(
            "to",
            "not_priced",
            "messages to this number's country cannot be priced with the rate card in force",
        )])),
    }
}

#[allow(clippy::too_many_arguments)] // one campaign and its recipient, each checked by the caller
async fn insert_single(
    conn: &mut PgConnection,
    who: &Caller,
    request: &SendMessageRequest,
    number: &NormalizedNumber,
    contact_id: Option<Uuid>,
    values: &[String],
    price: &MessagePrice,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, CampaignError> {
    let vendor = who.vendor_id();
    let quote = serde_json::to_value(price).unwrap_or_default();
    // One statement: the campaign (its key unique per vendor: a concurrent submission with
    // the same key waits, then inserts nothing) and its one recipient.
    let id: Option<Uuid> = sqlx::query_scalar(
        "WITH single AS (
             INSERT INTO campaigns (vendor_id, kind, name, template_id, status, queued_at,
                                    idempotency_key, created_by, total_count, pending_count,
                                    currency, quoted_cost, quote)
             VALUES ($1, 'SINGLE', $2, $3, 'QUEUED', $4, $5, $6, 1, 1, $7, $8, $9)
             ON CONFLICT ON CONSTRAINT campaigns_vendor_id_idempotency_key_key DO NOTHING
             RETURNING id
         ), recipient AS (
             INSERT INTO campaign_recipients (campaign_id, seq, vendor_id, contact_id, mobile, country, params)
             SELECT id, 1, $1, $10, $11, $12, $13 FROM single
         )
         SELECT id FROM single",
    )
    .bind(vendor.as_uuid())
    .bind(format!("Message to +{}", number.mobile))
    .bind(request.template_id)
    .bind(now)
    .bind(idempotency_key)
    .bind(who.user_id().map(|u| u.as_uuid()))
    .bind(&price.currency)
    .bind(price.price)
    .bind(quote)
    .bind(contact_id)
    .bind(&number.mobile)
    .bind(&number.country)
    .bind(json!(values))
    .fetch_optional(conn)
    .await?;
    Ok(id)
}

async fn single_row(
    conn: &mut PgConnection,
    vendor: VendorId,
    id: Uuid,
) -> sqlx::Result<Option<SingleRow>> {
    sqlx::query_as(&format!(
        "SELECT {SINGLE_COLUMNS}
           FROM campaigns c
           JOIN campaign_recipients r ON r.campaign_id = c.id AND r.seq = 1
           LEFT JOIN message_logs l ON l.vendor_id = c.vendor_id AND l.campaign_id = c.id
                                   AND l.recipient_seq = 1
          WHERE c.vendor_id = $1 AND c.id = $2 AND c.kind = 'SINGLE'"
    ))
    .bind(vendor.as_uuid())
    .bind(id)
    .fetch_optional(conn)
    .await
}

async fn find_by_key(
    conn: &mut PgConnection,
    vendor: VendorId,
    key: &str,
) -> Result<Option<SingleRow>, CampaignError> {
    let id: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT id, kind FROM campaigns WHERE vendor_id = $1 AND idempotency_key = $2",
    )
    .bind(vendor.as_uuid())
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        None => Ok(None),
        // The key names a campaign launch: not this request's.
        Some((_, kind)) if kind != "SINGLE" => Err(CampaignError::IdempotencyKeyReused),
        Some((id, _)) => Ok(single_row(conn, vendor, id).await?),
    }
}

/// The same message again (same recipient and template) gets the first answer, with the
/// message's status now; anything else under the same key is refused.
fn replay(
    first: SingleRow,
    number: &NormalizedNumber,
    request: &SendMessageRequest,
) -> Result<MessageAccepted, CampaignError> {
    if first.mobile != number.mobile || first.template_id != request.template_id {
        return Err(CampaignError::IdempotencyKeyReused);
    }
    let price = first
        .quote
        .clone()
        .and_then(|quote| serde_json::from_value::<MessagePrice>(quote).ok())
        .ok_or_else(|| {
            CampaignError::Database(sqlx::Error::Decode(
                format!("campaign {} has no stored message price", first.id).into(),
            ))
        })?;
    Ok(MessageAccepted {
        status: first.status(),
        id: first.id,
        to: first.mobile,
        template_id: first.template_id,
        price,
        created_at: first.created_at,
        replayed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(value: Value) -> Result<Parameters, CampaignError> {
        parse_parameters(Some(&value))
    }

    #[test]
    fn parameters_may_be_a_list_or_a_map_of_strings_and_specs() {
        let list = parsed(json!(["Asha", "50%"])).unwrap();
        assert_eq!(list.validate(2), Ok(()));
        assert_eq!(
            list.render(&Map::new()),
            Some(vec!["Asha".to_owned(), "50%".to_owned()])
        );
        let map = parsed(json!({
            "1": {"attribute": "name", "fallback": "there"},
            "2": "50%"
        }))
        .unwrap();
        assert_eq!(map.validate(2), Ok(()));
        let attributes = json!({"name": "Ravi"});
        assert_eq!(
            map.render(attributes.as_object().unwrap()),
            Some(vec!["Ravi".to_owned(), "50%".to_owned()])
        );
        assert_eq!(map.render(&Map::new()).unwrap()[0], "there");
        assert!(parse_parameters(None).unwrap().0.is_empty());
        assert!(parse_parameters(Some(&Value::Null)).unwrap().0.is_empty());
    }

    #[test]
    fn other_shapes_are_refused_with_the_field() {
        for bad in [json!("Asha"), json!([1, 2]), json!(7)] {
            let Err(CampaignError::Invalid(errors)) = parsed(bad.clone()) else {
                panic!("{bad} was accepted");
            };
            assert_eq!(errors[0].field, "parameters", "{bad}");
        }
        let Err(CampaignError::Invalid(errors)) = parsed(json!({"1": {"value": "x"}, "2": 3}))
        else {
            panic!("accepted");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["parameters.1", "parameters.2"]);
    }

    #[test]
    fn a_number_without_a_priced_country_is_refused_on_to() {
        let number = |country: Option<&str>| NormalizedNumber {
            mobile: "919876543210".to_owned(),
            country: country.map(str::to_owned),
        };
        let none = |_: &str| None;
        for n in [number(None), number(Some("IN"))] {
            let Err(CampaignError::Invalid(errors)) = priced(&n, none) else {
                panic!("priced");
            };
            assert_eq!(
                (errors[0].field.as_str(), errors[0].code.as_str()),
                ("to", "not_priced")
            );
        }
    }
}
