//! `campaign.send_range`: claim → send → record, batch after batch, for one time slice; what
//! is left goes to a continuation job published before this one is acknowledged.

use std::sync::Arc;
use std::time::Duration;

use kloyst_campaigns::jobs::SendRange;
use kloyst_queue::OutgoingMessage;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::claim::{CampaignContext, Claimed};
use crate::outcome::{Outcome, PauseReason};
use crate::record::BatchCounts;
use crate::send::{self, BatchSignals, Ready};
use crate::{DispatchError, Dispatcher};

/// `campaign_recipients.error_message` of a recipient whose parameters cannot be rendered.
pub const PARAMS_ERROR: &str =
    "PARAMS: a template parameter has no value for this contact and no fallback";

/// What a [`Dispatcher::send_range`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No such campaign.
    Missing,
    /// The campaign is not PROCESSING (paused, cancelled, finished): nothing more was sent.
    Stopped { status: String },
    /// The dispatcher paused the campaign (token expired, template paused).
    Paused { reason: PauseReason },
    /// Nothing PENDING is left in the range.
    Done {
        totals: BatchCounts,
        completed_campaign: bool,
    },
    /// The slice ended first: a continuation job carries on from `from_seq`.
    Continued { totals: BatchCounts, from_seq: i32 },
}

/// A batch's record running in the background.
type Recording = tokio::task::JoinHandle<Result<BatchCounts, DispatchError>>;

/// A sent batch, to record.
struct SentBatch {
    outcomes: Vec<(usize, Outcome)>,
    signals: Arc<BatchSignals>,
}

/// Waits for the batch being recorded, if any, and adds what it changed.
async fn settle(
    recording: &mut Option<Recording>,
    totals: &mut BatchCounts,
) -> Result<(), DispatchError> {
    if let Some(handle) = recording.take() {
        let counts = handle
            .await
            .map_err(|error| DispatchError::Task(error.to_string()))??;
        tracing::debug!(?counts, "batch recorded");
        totals.add(counts);
    }
    Ok(())
}

/// How long to wait for rows locked by a duplicate job before looking again.
const LOCKED_ROWS_PAUSE: Duration = Duration::from_millis(50);

impl Dispatcher {
    /// Runs one range job (see the module docs).
    #[tracing::instrument(
        name = "campaign.send_range",
        skip_all,
        fields(campaign.id = %job.campaign_id, from_seq = job.from_seq, to_seq = job.to_seq)
    )]
    pub async fn send_range(&self, job: &SendRange) -> Result<RangeOutcome, DispatchError> {
        let deadline = Instant::now() + self.settings().slice;
        let Some(ctx) = self
            .campaign_context(job.campaign_id, job.vendor_id)
            .await?
        else {
            return Ok(RangeOutcome::Missing);
        };
        let ctx = Arc::new(ctx);
        let mut status = ctx.status.clone();
        let mut totals = BatchCounts::default();
        // The previous batch's record, running while the next batch is claimed and sent
        // (at most one: awaited before the next one starts, and before any return).
        let mut recording: Option<Recording> = None;
        // Every PENDING row of the range is at or above `floor`; claims walk from `cursor`.
        let mut floor = job.from_seq;
        let mut cursor = job.from_seq;
        loop {
            if status != "PROCESSING" {
                settle(&mut recording, &mut totals).await?;
                return Ok(RangeOutcome::Stopped { status });
            }
            if matches!(ctx.template_status.as_str(), "PAUSED" | "DISABLED") {
                settle(&mut recording, &mut totals).await?;
                self.pause(ctx.campaign_id, PauseReason::TemplatePaused)
                    .await?;
                return Ok(RangeOutcome::Paused {
                    reason: PauseReason::TemplatePaused,
                });
            }
            if Instant::now() >= deadline {
                break;
            }
            let attempt_id = Uuid::new_v4();
            let claimed = self
                .claim(
                    ctx.campaign_id,
                    cursor,
                    job.to_seq,
                    self.settings().claim_size(),
                    attempt_id,
                )
                .await?;
            let Some(last) = claimed.last() else {
                // What the last batch put back to PENDING counts from here on.
                settle(&mut recording, &mut totals).await?;
                let left = self.pending_in(ctx.campaign_id, floor, job.to_seq).await?;
                match (left.lowest, left.lowest_due) {
                    (None, _) => {
                        let completed_campaign = self.try_complete(ctx.campaign_id).await?;
                        return Ok(RangeOutcome::Done {
                            totals,
                            completed_campaign,
                        });
                    }
                    (Some(lowest), Some(due)) => {
                        if due >= cursor {
                            // Claimed at this moment by a duplicate job (SKIP LOCKED).
                            tokio::time::sleep(LOCKED_ROWS_PAUSE).await;
                        }
                        floor = lowest;
                        cursor = due;
                    }
                    (Some(lowest), None) => {
                        // Only retries waiting for their time: wait, within the slice.
                        floor = lowest;
                        cursor = lowest;
                        let wait = Duration::from_millis(
                            left.next_due_in_ms.unwrap_or(0.0).max(1.0) as u64,
                        );
                        tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
                    }
                }
                status = self
                    .campaign_status(ctx.campaign_id)
                    .await?
                    .unwrap_or_default();
                continue;
            };
            cursor = last.seq.saturating_add(1);
            let span = tracing::info_span!(
                "campaign.batch",
                campaign.id = %ctx.campaign_id,
                first_seq = claimed.first().map_or(0, |c| c.seq),
                size = claimed.len()
            );
            let sent = self
                .send_claimed(
                    &ctx,
                    attempt_id,
                    &claimed,
                    Instant::now() + self.settings().slice,
                )
                .instrument(span.clone())
                .await;
            settle(&mut recording, &mut totals).await?;
            let pause = sent.signals.pause();
            let record = {
                let (this, ctx) = (self.clone(), ctx.clone());
                async move {
                    this.record(&ctx, attempt_id, &claimed, sent.outcomes, pause)
                        .await
                }
                .instrument(span)
            };
            if pause.is_some() || sent.signals.limiter_failed() {
                totals.add(record.await?);
                if let Some(reason) = pause {
                    return Ok(RangeOutcome::Paused { reason });
                }
                // Recorded what was sent; the job is retried once Redis answers again.
                return Err(DispatchError::Limiter(
                    crate::limiter::LimiterError::Unavailable,
                ));
            }
            recording = Some(tokio::spawn(record));
            status = self
                .campaign_status(ctx.campaign_id)
                .await?
                .unwrap_or_default();
        }
        settle(&mut recording, &mut totals).await?;
        // Published before the job is acknowledged: a crash in between duplicates the
        // continuation (harmless), never loses it.
        let next = SendRange {
            from_seq: floor,
            ..job.clone()
        };
        self.jobs()
            .publish(&OutgoingMessage::from_job(&next)?)
            .await?;
        Ok(RangeOutcome::Continued {
            totals,
            from_seq: floor,
        })
    }

    /// Renders and sends one claimed batch (recording is the caller's).
    async fn send_claimed(
        &self,
        ctx: &CampaignContext,
        attempt_id: Uuid,
        claimed: &[Claimed],
        send_deadline: Instant,
    ) -> SentBatch {
        let mut outcomes = Vec::with_capacity(claimed.len());
        let mut ready = Vec::with_capacity(claimed.len());
        for (index, c) in claimed.iter().enumerate() {
            if c.opted_out == Some(true) {
                outcomes.push((index, Outcome::Skipped));
                continue;
            }
            match c.body_parameters(ctx.parameters.as_ref()) {
                Some(values) => ready.push(Ready {
                    index,
                    attempts: c.attempts,
                    message: send::message(ctx, &c.mobile, c.seq, attempt_id, values),
                }),
                None => outcomes.push((
                    index,
                    Outcome::Failed {
                        code: None,
                        title: Some("PARAMS".to_owned()),
                        message: PARAMS_ERROR.to_owned(),
                        retryable: false,
                    },
                )),
            }
        }
        let signals = Arc::new(BatchSignals::default());
        outcomes.extend(self.send_batch(ctx, ready, send_deadline, &signals).await);
        SentBatch { outcomes, signals }
    }

    async fn pause(&self, campaign_id: Uuid, reason: PauseReason) -> Result<(), DispatchError> {
        sqlx::query(
            "UPDATE campaigns SET status = 'PAUSED', pause_reason = $2, paused_at = now() \
             WHERE id = $1 AND status = 'PROCESSING'",
        )
        .bind(campaign_id)
        .bind(reason.as_str())
        .execute(self.pg())
        .await?;
        tracing::warn!(campaign.id = %campaign_id, reason = reason.as_str(), "campaign paused");
        Ok(())
    }
}
