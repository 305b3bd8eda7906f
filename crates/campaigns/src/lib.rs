//! Campaigns: the quote of sending a template to a contact list, the launch (quote, hold and
//! frozen recipients in one transaction), the lifecycle and the reads.
//!
//! [`quote_in`] counts the list's members by country in one query, prices each country once
//! with the pricing engine's [`kloyst_pricing::PriceTable`] (the figures the debit path
//! charges) and compares the total with the wallet's available balance. [`Quotes::quote`] is
//! the API's form: read-only tenant transactions, the price table loaded between them.

mod campaign_repo;
mod error;
pub mod jobs;
mod launch;
mod lifecycle;
pub mod model;
pub mod params;
mod quote;
mod read;
mod repo;
mod retry;
mod scheduler;
mod single;
pub mod views;
mod watchdog;

use chrono::Utc;
use kloyst_core::VendorId;
use kloyst_identity::Principal;
use kloyst_pricing::{Pricing, PricingError};
use sqlx::{PgPool, Postgres, Transaction};

pub use error::{CampaignError, QuoteError};
pub use jobs::{DispatchCampaign, SendRange};
pub use model::{
    MarketLine, Quote, QuoteRequest, QuotedList, QuotedRateCard, QuotedTemplate, QuotedWallet,
    RecipientCounts,
};
pub use params::{Parameter, Parameters};
pub use quote::{priced_category_in, quote_in, quote_with_table_in};
pub use retry::RetryRequest;
pub use scheduler::start_due_scheduled;
pub use single::{MessageAccepted, MessagePrice, SendMessageRequest, SingleMessageView};
pub use views::{
    CampaignCounters, CampaignFilter, CampaignView, LaunchRequest, Launched, MessageFilter,
    MessageView, RecipientFilter, RecipientView, SchedulerReport,
};
pub use watchdog::fail_stalled;

/// Quotes: recipients of a list counted by market, priced by the pricing engine.
#[derive(Clone)]
pub struct Quotes {
    pg: PgPool,
    pricing: Pricing,
}

impl Quotes {
    pub fn new(pg: PgPool, pricing: Pricing) -> Self {
        Self { pg, pricing }
    }

    /// The quote for the caller's vendor, now. The price table is loaded between two short
    /// tenant transactions (RLS, session checked), so a request never holds one pooled
    /// connection while waiting for another: concurrent quotes cannot starve the pool.
    pub async fn quote(&self, who: &Principal, request: QuoteRequest) -> Result<Quote, QuoteError> {
        let vendor = who.vendor_id;
        let at = Utc::now();
        let mut tx = self.begin_for(who).await?;
        let category = priced_category_in(&mut tx, vendor, request.template_id).await?;
        kloyst_db::end_read_only(tx);
        let table = self
            .pricing
            .price_table(vendor, category.as_str(), at)
            .await
            .map_err(|error| unavailable(vendor, error))?;
        let mut tx = self.begin_for(who).await?;
        let quote = quote_with_table_in(
            &mut tx,
            &self.pricing,
            &table,
            vendor,
            request.template_id,
            request.list_id,
            at,
        )
        .await
        .map_err(|error| logged(vendor, error))?;
        kloyst_db::end_read_only(tx);
        Ok(quote)
    }

    async fn begin_for(
        &self,
        who: &Principal,
    ) -> Result<Transaction<'static, Postgres>, QuoteError> {
        Ok(
            kloyst_db::begin_as_user(&self.pg, who.vendor_id, who.user_id, who.role.as_str())
                .await?,
        )
    }
}

/// Campaigns: launch (quote, hold, frozen recipients), pause / resume / cancel, and the
/// reads with live counters. Each call is a tenant transaction of the calling user.
#[derive(Clone)]
pub struct Campaigns {
    pg: PgPool,
    pricing: Pricing,
}

impl Campaigns {
    pub fn new(pg: PgPool, pricing: Pricing) -> Self {
        Self { pg, pricing }
    }

    async fn begin_for(
        &self,
        who: &Principal,
    ) -> Result<Transaction<'static, Postgres>, CampaignError> {
        Ok(
            kloyst_db::begin_as_user(&self.pg, who.vendor_id, who.user_id, who.role.as_str())
                .await?,
        )
    }
}

fn unavailable(vendor: VendorId, error: PricingError) -> QuoteError {
    logged(vendor, error.into())
}

/// Missing pricing configuration is answered 409 to the vendor, but it is ours to fix.
fn logged(vendor: VendorId, error: QuoteError) -> QuoteError {
    if let QuoteError::PricingUnavailable(inner) = &error {
        tracing::warn!(vendor.id = %vendor, error = %inner, "quote refused: pricing is not configured");
    }
    error
}
