//! The status applier against the real Postgres: statuses stored with `store_statuses` from
//! Meta-shaped JSON, applied with `apply_batch`, checked on the message logs, the ledger, the
//! campaign counters and the books.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod accounting;
mod books;
mod charges;
mod checks;
mod inline;
mod order;
mod parking;
mod race;
mod settle;

use std::str::FromStr;
use std::time::Duration;

use kloyst_billing::{invariant_violations, Credit, CreditKind, HoldRequest, Ledger};
use kloyst_core::VendorId;
use kloyst_delivery::{
    store_statuses, ApplierSettings, ApplyReport, Pricing, StatusApplier, StatusSource,
};
use kloyst_meta::webhook::StatusUpdate;
use kloyst_pricing::{load_rate_card, NewRateCard};
use kloyst_testkit::TestStores;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const SAMPLE: &str = include_str!("../../../../data/rate-cards/meta-sample-2026-04-01.csv");

/// 2026-04-12, with the SAMPLE card in force.
pub const T0: i64 = 1_776_000_000;

/// India on the SAMPLE card at USD→INR 88 with the 20 % SHARED margin.
pub const IN_MARKETING: &str = "1.1299";
pub const IN_UTILITY: &str = "0.1373";

pub fn d(value: &str) -> Decimal {
    Decimal::from_str(value).unwrap()
}

pub struct World {
    pub stores: TestStores,
    pub ledger: Ledger,
}

impl World {
    /// A fresh database with the SAMPLE card loaded.
    pub async fn new() -> Self {
        let stores = TestStores::new().await;
        let card = NewRateCard {
            name: "meta-sample-2026-04-01".to_owned(),
            currency: "USD".to_owned(),
            effective_from: chrono::DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            source: None,
            is_sample: true,
        };
        load_rate_card(&stores.pg, &card, SAMPLE).await.unwrap();
        let ledger = Ledger::new(stores.pg.clone());
        Self { stores, ledger }
    }

    pub fn pg(&self) -> &PgPool {
        &self.stores.pg
    }

    pub fn applier(&self, batch: i64) -> StatusApplier {
        StatusApplier::new(
            self.pg().clone(),
            Pricing::new(self.pg().clone()),
            ApplierSettings {
                batch,
                park_timeout: Duration::from_secs(600),
                poll: Duration::from_millis(50),
            },
        )
    }

    /// A vendor with a wallet holding `funds` (INR) and a MARKETING template.
    pub async fn vendor(&self, funds: &str) -> Vendor {
        let id: Uuid =
            sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Acme') RETURNING id")
                .fetch_one(self.pg())
                .await
                .unwrap();
        sqlx::query("INSERT INTO wallets (vendor_id) VALUES ($1)")
            .bind(id)
            .execute(self.pg())
            .await
            .unwrap();
        let vendor = VendorId::from_uuid(id);
        if d(funds) > Decimal::ZERO {
            self.ledger
                .post_credit(
                    vendor,
                    Credit {
                        kind: CreditKind::Recharge,
                        amount: d(funds),
                        reference: format!("recharge:{}", Uuid::new_v4()),
                        payment_order_id: None,
                        description: None,
                        created_by: None,
                    },
                )
                .await
                .unwrap();
        }
        let template: Uuid = sqlx::query_scalar(
            "INSERT INTO templates (vendor_id, name, language, category, components, param_count, \
                 meta_name, status) \
             VALUES ($1, 'sale', 'en_US', 'MARKETING', '[{\"type\": \"BODY\", \"text\": \"Hi\"}]', \
                 0, $2, 'APPROVED') RETURNING id",
        )
        .bind(id)
        .bind(format!("sale_{}", Uuid::new_v4().simple()))
        .fetch_one(self.pg())
        .await
        .unwrap();
        Vendor { id, template }
    }

    /// A PROCESSING campaign of `vendor`, with a hold of `hold` when given.
    pub async fn campaign(&self, vendor: &Vendor, hold: Option<&str>) -> Uuid {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO campaigns (vendor_id, name, template_id, status, queued_at, started_at) \
             VALUES ($1, 'Sale', $2, 'PROCESSING', now(), now()) RETURNING id",
        )
        .bind(vendor.id)
        .bind(vendor.template)
        .fetch_one(self.pg())
        .await
        .unwrap();
        if let Some(amount) = hold {
            self.ledger
                .hold(
                    VendorId::from_uuid(vendor.id),
                    HoldRequest {
                        amount: d(amount),
                        reference: format!("hold:campaign:{id}"),
                        campaign_id: Some(id),
                    },
                )
                .await
                .unwrap();
        }
        id
    }

    /// An accepted (PENDING) outbound message log, as dispatch records it.
    pub async fn message(
        &self,
        vendor: &Vendor,
        campaign: Option<Uuid>,
        wamid: &str,
        category: &str,
        country: Option<&str>,
    ) {
        sqlx::query(
            "INSERT INTO message_logs (vendor_id, campaign_id, recipient_seq, direction, template_id, \
                 template_category, recipient, country, wa_message_id, status) \
             VALUES ($1, $2, CASE WHEN $2::uuid IS NULL THEN NULL \
                        ELSE (SELECT count(*) + 1 FROM message_logs WHERE campaign_id = $2) END, \
                     'OUTBOUND', $3, $4, '919800000001', $5, $6, 'PENDING')",
        )
        .bind(vendor.id)
        .bind(campaign)
        .bind(vendor.template)
        .bind(category)
        .bind(country)
        .bind(wamid)
        .execute(self.pg())
        .await
        .unwrap();
    }

    /// Stores Meta-shaped status objects, as the webhook-worker does.
    pub async fn store(&self, statuses: &[Value]) -> u64 {
        let parsed: Vec<StatusUpdate> = statuses
            .iter()
            .map(|s| serde_json::from_value(s.clone()).unwrap())
            .collect();
        let mut conn = self.pg().acquire().await.unwrap();
        let stored = store_statuses(
            &mut conn,
            StatusSource {
                inbox_id: 1,
                waba_id: "102290129340398",
                phone_number_id: Some("106540352242922"),
            },
            &parsed,
            Some(statuses),
        )
        .await
        .unwrap();
        stored.new
    }

    /// The parked statuses' backoff has passed: due now.
    pub async fn make_parked_due(&self) {
        sqlx::query(
            "UPDATE message_status_events SET next_attempt_at = now() - interval '1 second' \
              WHERE next_attempt_at IS NOT NULL",
        )
        .execute(self.pg())
        .await
        .unwrap();
    }

    /// Applies until nothing is due.
    pub async fn drain(&self, applier: &StatusApplier) -> ApplyReport {
        let mut total = ApplyReport::default();
        loop {
            let report = applier.apply_batch().await.unwrap();
            if report.claimed == 0 {
                return total;
            }
            total.claimed += report.claimed;
            total.applied += report.applied;
            total.parked += report.parked;
            total.dead += report.dead;
            total.charged += report.charged;
            total.free += report.free;
            total.unpriced += report.unpriced;
            total.refused += report.refused;
        }
    }

    /// Asserts that the books of every wallet are right.
    pub async fn books_ok(&self) {
        let violations = invariant_violations(self.pg(), None).await.unwrap();
        assert!(
            violations.is_empty(),
            "invariants violated: {violations:#?}"
        );
    }

    pub async fn log(&self, wamid: &str) -> Log {
        sqlx::query_as(
            "SELECT status, status_at, flags, pricing_category, pricing_model, pricing_type, \
                    billable, conversation_id, market, meta_rate, rate_currency, meta_cost, margin, \
                    cost, charged_at IS NOT NULL AS charged, ledger_transaction_id, error_code, \
                    error_title, sent_at, delivered_at, read_at, failed_at \
               FROM message_logs WHERE wa_message_id = $1",
        )
        .bind(wamid)
        .fetch_one(self.pg())
        .await
        .unwrap()
    }

    /// The ledger rows `debit:<wamid>`: (count, amount of the first).
    pub async fn debits(&self, wamid: &str) -> (i64, Option<Decimal>) {
        sqlx::query_as(
            "SELECT count(*), min(-amount) FROM transactions WHERE reference = 'debit:' || $1",
        )
        .bind(wamid)
        .fetch_one(self.pg())
        .await
        .unwrap()
    }

    pub async fn counters(&self, campaign: Uuid) -> Counters {
        sqlx::query_as(
            "SELECT delivered_count, read_count, failed_count, actual_cost \
               FROM campaigns WHERE id = $1",
        )
        .bind(campaign)
        .fetch_one(self.pg())
        .await
        .unwrap()
    }
}

pub struct Vendor {
    pub id: Uuid,
    pub template: Uuid,
}

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Log {
    pub status: String,
    pub status_at: Option<chrono::DateTime<chrono::Utc>>,
    pub flags: Vec<String>,
    pub pricing_category: Option<String>,
    pub pricing_model: Option<String>,
    pub pricing_type: Option<String>,
    pub billable: Option<bool>,
    pub conversation_id: Option<String>,
    pub market: Option<String>,
    pub meta_rate: Option<Decimal>,
    pub rate_currency: Option<String>,
    pub meta_cost: Option<Decimal>,
    pub margin: Option<Decimal>,
    pub cost: Option<Decimal>,
    pub charged: bool,
    pub ledger_transaction_id: Option<i64>,
    pub error_code: Option<i32>,
    pub error_title: Option<String>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub read_at: Option<chrono::DateTime<chrono::Utc>>,
    pub failed_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Counters {
    pub delivered_count: i32,
    pub read_count: i32,
    pub failed_count: i32,
    pub actual_cost: Decimal,
}

/// A PMP regular pricing object of `category`.
pub fn regular(category: &str) -> Value {
    json!({ "billable": true, "pricing_model": "PMP", "type": "regular", "category": category })
}

/// A status object as Meta sends it; `offset` seconds after [`T0`].
pub fn status(wamid: &str, status: &str, offset: i64, pricing: Option<Value>) -> Value {
    let mut value = json!({
        "id": wamid,
        "status": status,
        "timestamp": (T0 + offset).to_string(),
        "recipient_id": "919800000001",
    });
    if let Some(pricing) = pricing {
        value["pricing"] = pricing;
    }
    if status == "failed" {
        value["errors"] = json!([{
            "code": 131049,
            "title": "This message was not delivered to maintain healthy ecosystem engagement.",
            "message": "This message was not delivered to maintain healthy ecosystem engagement.",
            "error_data": { "details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered." },
        }]);
    }
    value
}

/// Meta's four statuses of one message, timestamps in order, pricing on each (pre-v24).
pub fn four(wamid: &str) -> Vec<Value> {
    vec![
        status(wamid, "sent", 0, Some(regular("marketing"))),
        status(wamid, "delivered", 2, Some(regular("marketing"))),
        status(wamid, "read", 30, Some(regular("marketing"))),
        status(wamid, "failed", 5, None),
    ]
}
