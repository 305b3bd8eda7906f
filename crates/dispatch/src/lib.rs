//! Campaign dispatch: the worker side of a campaign.
//!
//! ## Job flow
//!
//! 1. `campaign.dispatch` ([`DispatchCampaign`], [`Dispatcher::dispatch`]): locks the campaign,
//!    QUEUED → PROCESSING, and publishes one `campaign.send_range` job per stripe of the seqs
//!    still PENDING (`min(CAMPAIGN_PARALLEL_RANGES, ⌈n / CAMPAIGN_RANGE_SIZE⌉)` contiguous
//!    stripes, at least two past two batches so one stripe's gap between batches is covered
//!    by the other), so one campaign never has more than that many jobs in flight and many
//!    campaigns share the workers fairly.
//! 2. `campaign.send_range` ([`SendRange`], [`Dispatcher::send_range`]), for one time slice
//!    (`CAMPAIGN_SLICE`), batch after batch:
//!    - checks the campaign is still PROCESSING before each batch, and every 500 ms while a
//!      batch waits for send slots (pause and cancel take effect within about a second; what
//!      was claimed but not sent goes back to PENDING, or to CANCELLED if the campaign was);
//!    - **claims** a batch with one `UPDATE … WHERE (campaign_id, seq) IN (SELECT … FOR UPDATE
//!      SKIP LOCKED) RETURNING …`, committed on its own: the recipients are SENDING with a
//!      fresh attempt id *before* any Meta call;
//!    - skips contacts that opted out since the launch (SKIPPED), renders each recipient's
//!      parameters (unrenderable → FAILED, `PARAMS`), takes send
//!      slots from the shared per-number limiter ([`SendRateLimiter`]) and calls Meta with
//!      bounded concurrency, `biz_opaque_callback_data = c:{campaign}:{seq}:{attempt}`;
//!    - **records** the batch in one transaction: recipients SENT / FAILED / back to PENDING
//!      (each update guarded by `attempt_id` and SENDING), message logs in one insert, the
//!      campaign's counters in one update (in the background while the next batch is
//!      claimed and sent; at most one record outstanding, awaited before any decision that
//!      depends on it);
//!    - at the end of the slice publishes a continuation job (before acknowledging this one);
//!      when nothing is PENDING or SENDING any more, completes the campaign (once: status
//!      guard).
//! 3. [`Dispatcher::supervise`]: every `CAMPAIGN_RECONCILE_INTERVAL`, [`Dispatcher::reconcile`]
//!    (stuck SENDING recipients, see below; PROCESSING campaigns with nothing left →
//!    COMPLETED; QUEUED/PROCESSING ones without progress for `CAMPAIGN_WATCHDOG` while
//!    recipients are PENDING → planned again, stamped `replanned_at`; still without progress
//!    after `CAMPAIGN_WATCHDOG_FAIL_AFTER` → FAILED, `WATCHDOG_TIMEOUT`, hold released) and the scheduler
//!    ([`kloyst_campaigns::start_due_scheduled`], grace `CAMPAIGN_SCHEDULE_GRACE`).
//!
//! ## Errors
//!
//! Meta's answer decides ([`kloyst_meta::ErrorClass`]): throttles (130429, 80007, 131056, …)
//! put the recipient back to PENDING after the hinted delay without counting an attempt, and
//! 130429/80007 halve the shared rate for a while; transient errors back off exponentially up
//! to `CAMPAIGN_MAX_ATTEMPTS`, then FAILED (retryable); permanent errors are FAILED with
//! Meta's code and message; an expired token (190) or a paused/disabled template (132015,
//! 132016) puts the recipient back to PENDING and pauses the campaign (TOKEN_EXPIRED,
//! TEMPLATE_PAUSED). A call Meta did not answer in time may have been accepted: that
//! recipient stays SENDING and is settled by the reconciler, never resent.
//!
//! ## The no-double-send rule
//!
//! A recipient is resent only when we know Meta did not accept it (an error answer, or never
//! called). One left SENDING longer than `CAMPAIGN_SENDING_LEASE` (its worker died, or Meta
//! did not answer in time) is settled by the reconciler: SENT with the wamid when a status
//! webhook carries its exact callback data `c:{campaign}:{seq}:{attempt}`, otherwise UNKNOWN
//! (counted in `unknown_count`, reported, never resent automatically); an UNKNOWN one whose
//! callback data shows up in a later status webhook (within an hour) becomes SENT after all.

mod claim;
mod error;
pub mod limiter;
mod outcome;
mod plan;
mod range;
mod reconcile;
mod record;
mod send;
pub mod settings;

use std::sync::Arc;

pub use error::DispatchError;
pub use kloyst_campaigns::jobs::{DispatchCampaign, SendRange};
pub use limiter::{Grant, LimiterError, SendRateLimiter};
pub use outcome::PauseReason;
pub use plan::{stripes, DispatchOutcome};
pub use range::{RangeOutcome, PARAMS_ERROR};
pub use reconcile::ReconcileReport;
pub use record::BatchCounts;
pub use send::callback_data;
pub use settings::DispatchSettings;

use kloyst_db::PgPool;
use kloyst_meta::MetaClient;
use kloyst_queue::Queue;

/// Runs the dispatch jobs and the reconciler. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    pg: PgPool,
    jobs: Queue,
    meta: MetaClient,
    limiter: SendRateLimiter,
    settings: DispatchSettings,
}

impl Dispatcher {
    /// `jobs` is the stream continuations and re-plans are published to (the worker-pool's
    /// `jobs`); `limiter` should have `settings.send_rate`.
    pub fn new(
        pg: PgPool,
        jobs: Queue,
        meta: MetaClient,
        limiter: SendRateLimiter,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pg,
                jobs,
                meta,
                limiter,
                settings,
            }),
        }
    }

    pub fn settings(&self) -> &DispatchSettings {
        &self.inner.settings
    }

    fn pg(&self) -> &PgPool {
        &self.inner.pg
    }

    fn jobs(&self) -> &Queue {
        &self.inner.jobs
    }

    fn meta(&self) -> &MetaClient {
        &self.inner.meta
    }

    fn limiter(&self) -> &SendRateLimiter {
        &self.inner.limiter
    }
}
