//! What handlers share.

use kloyst_contacts::Contacts;
use kloyst_identity::Identity;
use kloyst_ratelimit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    pub identity: Identity,
    pub contacts: Contacts,
    pub limiter: RateLimiter,
    pub templates: kloyst_templates::Templates,
    pub pricing: kloyst_pricing::Pricing,
    pub wallet: kloyst_billing::WalletReader,
    pub quotes: kloyst_campaigns::Quotes,
    pub campaigns: kloyst_campaigns::Campaigns,
    pub recharges: kloyst_payments::Recharges,
}
