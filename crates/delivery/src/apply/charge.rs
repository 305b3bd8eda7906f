//! Pricing a delivered message (with a short-lived cache of price tables) and debiting one
//! vendor's messages in one ledger call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use kloyst_billing::{post_debits_in, BillingError, Debit, Posted};
use kloyst_core::VendorId;
use kloyst_pricing::{Category, Price, PriceTable, Pricing, PricingError};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::state::PricingFacts;

/// How long a loaded price table is reused (a table is ~6 queries).
const TABLE_TTL: Duration = Duration::from_secs(60);

type TableKey = (Uuid, Category, DateTime<Utc>);
/// A table, or why none exists (not a database failure: those are not cached).
type Cached = Result<Arc<PriceTable>, String>;

/// Price tables per (vendor, category, minute of the send).
pub struct PriceCache {
    pricing: Pricing,
    tables: Mutex<HashMap<TableKey, (Instant, Cached)>>,
}

/// Why a billable message has no price.
#[derive(Debug)]
pub enum Unpriced {
    /// Expected gaps: no card, unpriced market, unknown category or country.
    Missing(String),
    /// The reference data could not be read: the batch is retried.
    Failed(PricingError),
}

impl PriceCache {
    pub fn new(pricing: Pricing) -> Self {
        Self {
            pricing,
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// The price of a message of `vendor` to `country`, in Meta's category, at `at` (the
    /// send). Tables are keyed by the minute of `at` and loaded at its start: rate cards
    /// start on whole minutes (quarter days), so a minute never straddles two cards.
    pub async fn price(
        &self,
        vendor: Uuid,
        pricing: &PricingFacts,
        country: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Price, Unpriced> {
        let category = pricing
            .category
            .as_deref()
            .ok_or_else(|| Unpriced::Missing("Meta sent no pricing category".to_owned()))?;
        let category =
            Category::parse(category).map_err(|error| Unpriced::Missing(error.to_string()))?;
        let country = country
            .ok_or_else(|| Unpriced::Missing("the message has no recipient country".to_owned()))?;
        let minute = at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at);
        let table = self.table((vendor, category, minute)).await?;
        table
            .price(country)
            .map_err(|error| Unpriced::Missing(error.to_string()))
    }

    async fn table(&self, key: TableKey) -> Result<Arc<PriceTable>, Unpriced> {
        if let Some(cached) = self.cached(&key) {
            return cached.map_err(Unpriced::Missing);
        }
        let (vendor, category, at) = key;
        let loaded: Cached = match self
            .pricing
            .price_table(VendorId::from_uuid(vendor), category.as_str(), at)
            .await
        {
            Ok(table) => Ok(Arc::new(table)),
            Err(PricingError::Db(error)) => return Err(Unpriced::Failed(PricingError::Db(error))),
            Err(error) => Err(error.to_string()),
        };
        if let Ok(mut tables) = self.tables.lock() {
            let now = Instant::now();
            tables.retain(|_, (loaded_at, _)| now.duration_since(*loaded_at) < TABLE_TTL);
            tables.insert(key, (now, loaded.clone()));
        }
        loaded.map_err(Unpriced::Missing)
    }

    fn cached(&self, key: &TableKey) -> Option<Cached> {
        let tables = self.tables.lock().ok()?;
        let (loaded_at, cached) = tables.get(key)?;
        (loaded_at.elapsed() < TABLE_TTL).then(|| cached.clone())
    }
}

/// What happened to one vendor's debits.
pub enum VendorCharge {
    Posted(Vec<Posted>),
    /// The wallet refused the batch (funds, or a hold/reference problem): nothing posted.
    Refused(BillingError),
}

/// Posts one vendor's debits inside a savepoint of the batch's transaction, so a refusal
/// rolls back only this vendor's attempt and the batch goes on.
pub async fn debit_vendor(
    conn: &mut PgConnection,
    vendor: Uuid,
    debits: &[Debit],
) -> Result<VendorCharge, BillingError> {
    let mut savepoint = conn.begin().await?;
    match post_debits_in(&mut savepoint, VendorId::from_uuid(vendor), debits).await {
        Ok(posted) => {
            savepoint.commit().await?;
            Ok(VendorCharge::Posted(posted))
        }
        Err(BillingError::Database(error)) => Err(BillingError::Database(error)),
        Err(refused) => {
            savepoint.rollback().await?;
            Ok(VendorCharge::Refused(refused))
        }
    }
}
