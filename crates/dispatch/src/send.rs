//! Sends one claimed batch: each message starts at a slot of the shared per-number rate, at
//! most `CAMPAIGN_SEND_CONCURRENCY` calls in flight, and nothing new starts past the deadline
//! or once the campaign must pause.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kloyst_meta::{MessageContent, OutgoingMessage, TemplateMessage};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::claim::CampaignContext;
use crate::limiter::Grant;
use crate::outcome::{self, Outcome, PauseReason, Signals};
use crate::Dispatcher;

/// One message ready to go: its index in the batch and the recipient's attempts so far.
pub(crate) struct Ready {
    pub index: usize,
    pub attempts: i16,
    pub message: OutgoingMessage,
}

pub(crate) fn message(
    ctx: &CampaignContext,
    to: &str,
    seq: i32,
    attempt_id: uuid::Uuid,
    body_parameters: Vec<String>,
) -> OutgoingMessage {
    OutgoingMessage {
        to: to.to_owned(),
        content: MessageContent::Template(TemplateMessage {
            name: ctx.meta_name.clone(),
            language: ctx.language.clone(),
            body_parameters,
        }),
        biz_opaque_callback_data: Some(callback_data(ctx.campaign_id, seq, attempt_id)),
    }
}

/// `c:{campaign_id}:{seq}:{attempt_id}`: echoed in every status webhook of the message, so a
/// send whose answer was lost can be matched to its recipient and attempt.
pub fn callback_data(campaign_id: uuid::Uuid, seq: i32, attempt_id: uuid::Uuid) -> String {
    format!("c:{campaign_id}:{seq}:{attempt_id}")
}

/// A send that wakes later than this after its slot takes a fresh slot: the 2% headroom of
/// the spacing must absorb the network's jitter, not a busy CPU's.
const LATE_TOLERANCE: Duration = Duration::from_millis(5);

/// Where the batch's slot allocation stands.
struct Slots {
    campaign_id: uuid::Uuid,
    waiting: VecDeque<Ready>,
    grant: Option<Grant>,
    used: usize,
    /// When the campaign's status was last read: a long batch (a shared, busy number) looks
    /// again, so that pause and cancel take effect within about a second.
    status_checked: Instant,
}

/// How often a batch still sending re-reads its campaign's status.
const STATUS_RECHECK: Duration = Duration::from_millis(500);

/// What a batch's calls decided, besides each recipient's outcome.
#[derive(Default)]
pub(crate) struct BatchSignals {
    halt: AtomicBool,
    pause: Mutex<Option<PauseReason>>,
    slow_down: AtomicBool,
    limiter_failed: AtomicBool,
}

impl BatchSignals {
    fn raise(&self, signals: Signals) {
        if let Some(reason) = signals.pause {
            self.halt.store(true, Ordering::SeqCst);
            if let Ok(mut pause) = self.pause.lock() {
                pause.get_or_insert(reason);
            }
        }
        if signals.slow_down {
            self.slow_down.store(true, Ordering::SeqCst);
        }
    }

    pub fn pause(&self) -> Option<PauseReason> {
        self.pause.lock().ok().and_then(|pause| *pause)
    }

    pub fn limiter_failed(&self) -> bool {
        self.limiter_failed.load(Ordering::SeqCst)
    }
}

fn collect(
    outcomes: &mut Vec<(usize, Outcome)>,
    joined: Option<Result<(usize, Outcome), tokio::task::JoinError>>,
) {
    match joined {
        Some(Ok(outcome)) => outcomes.push(outcome),
        Some(Err(error)) => {
            tracing::error!(%error, "a send task failed; its recipient is left to the reconciler")
        }
        None => {}
    }
}

impl Dispatcher {
    /// Sends `ready`; returns `(index, outcome)` for them (those never started are
    /// [`Outcome::unsent`]; one whose task panicked is missing, so it stays SENDING for the
    /// reconciler). Each call is its own task, so the calls in flight keep going while the
    /// next one waits for its slot.
    pub(crate) async fn send_batch(
        &self,
        ctx: &CampaignContext,
        ready: Vec<Ready>,
        deadline: Instant,
        signals: &Arc<BatchSignals>,
    ) -> Vec<(usize, Outcome)> {
        let mut slots = Slots {
            campaign_id: ctx.campaign_id,
            waiting: ready.into(),
            grant: None,
            used: 0,
            status_checked: Instant::now(),
        };
        let phone: Arc<str> = Arc::from(ctx.phone_number_id.as_str());
        let mut outcomes = Vec::with_capacity(slots.waiting.len());
        let mut tasks = JoinSet::new();
        while let Some(item) = slots.waiting.pop_front() {
            while tasks.len() >= self.settings().send_concurrency {
                collect(&mut outcomes, tasks.join_next().await);
            }
            let at = self.next_slot(&mut slots, &phone, deadline, signals).await;
            let (this, phone, signals) = (self.clone(), phone.clone(), signals.clone());
            tasks.spawn(async move { this.send_one(&phone, item, at, deadline, &signals).await });
        }
        // Sends already given a slot wait for it (up to a second ahead): keep re-reading
        // the status meanwhile, so that a pause or cancel stops them before they go out.
        let mut recheck = tokio::time::interval_at(Instant::now() + STATUS_RECHECK, STATUS_RECHECK);
        loop {
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    None => break,
                    joined => collect(&mut outcomes, joined),
                },
                _ = recheck.tick(), if !signals.halt.load(Ordering::SeqCst) => {
                    self.recheck_status(ctx.campaign_id, signals).await;
                }
            }
        }
        outcomes
    }

    /// Halts the batch when its campaign is no longer PROCESSING (paused, cancelled …).
    async fn recheck_status(&self, campaign_id: uuid::Uuid, signals: &BatchSignals) {
        match self.campaign_status(campaign_id).await {
            Ok(Some(status)) if status == "PROCESSING" => {}
            Ok(_) => signals.halt.store(true, Ordering::SeqCst),
            Err(error) => tracing::warn!(%error, "could not re-read the campaign's status"),
        }
    }

    /// One slot on its own, or `None` past the deadline or without the limiter.
    async fn fresh_slot(&self, phone: &str, deadline: Instant) -> Option<Instant> {
        loop {
            if Instant::now() >= deadline {
                return None;
            }
            match self.limiter().acquire(phone, 1).await {
                Ok(grant) if grant.count > 0 => return Some(grant.first_at),
                Ok(grant) => tokio::time::sleep_until(grant.first_at.min(deadline)).await,
                Err(error) => {
                    tracing::warn!(%error, "send-rate limiter unavailable");
                    return None;
                }
            }
        }
    }

    /// The start of the next slot, or `None` when the message must not be sent now (out of
    /// time, halted, or the limiter unreachable).
    async fn next_slot(
        &self,
        slots: &mut Slots,
        phone: &str,
        deadline: Instant,
        signals: &BatchSignals,
    ) -> Option<Instant> {
        loop {
            if signals.halt.load(Ordering::SeqCst) || Instant::now() >= deadline {
                return None;
            }
            if slots.status_checked.elapsed() >= STATUS_RECHECK {
                slots.status_checked = Instant::now();
                self.recheck_status(slots.campaign_id, signals).await;
                if signals.halt.load(Ordering::SeqCst) {
                    return None;
                }
            }
            if let Some(grant) = slots.grant {
                if slots.used < grant.count {
                    slots.used += 1;
                    return Some(grant.slot(slots.used - 1));
                }
            }
            // This message plus the ones behind it.
            let wanted = slots.waiting.len() + 1;
            match self.limiter().acquire(phone, wanted).await {
                Ok(grant) if grant.count > 0 => {
                    slots.grant = Some(grant);
                    slots.used = 0;
                }
                Ok(grant) => tokio::time::sleep_until(grant.first_at.min(deadline)).await,
                Err(error) => {
                    // Without the shared limiter we cannot keep the rate: send nothing more.
                    tracing::warn!(%error, "send-rate limiter unavailable; batch stopped");
                    signals.limiter_failed.store(true, Ordering::SeqCst);
                    signals.halt.store(true, Ordering::SeqCst);
                    return None;
                }
            }
        }
    }

    async fn send_one(
        &self,
        phone: &str,
        item: Ready,
        at: Option<Instant>,
        deadline: Instant,
        signals: &BatchSignals,
    ) -> (usize, Outcome) {
        let Some(mut at) = at else {
            return (item.index, Outcome::unsent());
        };
        loop {
            tokio::time::sleep_until(at).await;
            if signals.halt.load(Ordering::SeqCst) {
                return (item.index, Outcome::unsent());
            }
            if self.limiter().rate() == 0 || Instant::now() <= at + LATE_TOLERANCE {
                break;
            }
            // Woken too late (a busy CPU): sent now, it would crowd the sends of the next
            // slots at Meta's end. Take a fresh slot instead.
            metrics::counter!("campaign_sends_reslotted_total").increment(1);
            match self.fresh_slot(phone, deadline).await {
                Some(fresh) => at = fresh,
                None => return (item.index, Outcome::unsent()),
            }
        }
        match self.meta().send(phone, &item.message).await {
            Ok(accepted) => (item.index, outcome::accepted(accepted)),
            Err(error) => {
                let settings = self.settings();
                let (outcome, raised) = outcome::failed(
                    &error,
                    item.attempts,
                    settings.max_attempts,
                    settings.retry_base,
                );
                signals.raise(raised);
                if raised.slow_down {
                    if let Err(error) = self.limiter().slow_down(phone).await {
                        tracing::warn!(%error, "could not slow the shared send rate down");
                    }
                }
                (item.index, outcome)
            }
        }
    }
}
