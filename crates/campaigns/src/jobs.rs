//! The background jobs of a campaign (worker-pool, stream `jobs`). They carry ids and seq
//! ranges, never contacts: a 1,000,000-recipient campaign costs Redis a few kilobytes.

use kloyst_queue::Job;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Start (or resume) sending a QUEUED campaign: moves it to PROCESSING and plans its
/// [`SendRange`] jobs over the recipients still PENDING. Enqueued through the outbox by the
/// launch, by resume and by the scheduler, in the transaction that made the campaign QUEUED.
/// Idempotent: a redelivery finds nothing more to plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchCampaign {
    pub campaign_id: Uuid,
    pub vendor_id: Uuid,
}

impl Job for DispatchCampaign {
    const KIND: &'static str = "campaign.dispatch";
}

/// Send the PENDING recipients with `from_seq <= seq <= to_seq` of a PROCESSING campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRange {
    pub campaign_id: Uuid,
    pub vendor_id: Uuid,
    pub from_seq: i32,
    pub to_seq: i32,
}

impl Job for SendRange {
    const KIND: &'static str = "campaign.send_range";
}
