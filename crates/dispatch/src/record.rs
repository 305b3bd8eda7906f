//! Records a sent batch in one transaction: recipients, message logs (one multi-row insert)
//! and the campaign's counters (one update). Every recipient update is guarded by the batch's
//! attempt id and SENDING, so a stale job can never overwrite what the reconciler decided.

use serde_json::Value;
use uuid::Uuid;

use crate::claim::{CampaignContext, Claimed};
use crate::outcome::{Outcome, PauseReason};
use crate::{DispatchError, Dispatcher};

/// What one batch changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub sent: i32,
    pub failed: i32,
    /// Back to PENDING (a retry, a throttle, or never started).
    pub retried: i32,
    /// Opted out since the launch: SKIPPED, not sent.
    pub skipped: i32,
    /// Left SENDING (no answer from Meta in time) for the reconciler.
    pub ambiguous: i32,
}

/// Column arrays for `unnest`, one per kind of outcome.
impl BatchCounts {
    pub fn add(&mut self, other: BatchCounts) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.retried += other.retried;
        self.skipped += other.skipped;
        self.ambiguous += other.ambiguous;
    }
}

#[derive(Default)]
struct SentCols {
    seq: Vec<i32>,
    wamid: Vec<String>,
}

#[derive(Default)]
struct FailedCols {
    seq: Vec<i32>,
    code: Vec<Option<i32>>,
    message: Vec<String>,
    retryable: Vec<bool>,
}

#[derive(Default)]
struct RetryCols {
    seq: Vec<i32>,
    delay_ms: Vec<i64>,
    code: Vec<Option<i32>>,
    message: Vec<Option<String>>,
    /// 1 gives the attempt back (throttles, never sent).
    uncount: Vec<i16>,
}

#[derive(Default)]
struct Logs {
    seq: Vec<i32>,
    contact_id: Vec<Option<Uuid>>,
    mobile: Vec<String>,
    country: Vec<Option<String>>,
    wamid: Vec<Option<String>>,
    status: Vec<&'static str>,
    response: Vec<Option<Value>>,
    error_code: Vec<Option<i32>>,
    error_title: Vec<Option<String>>,
    error_message: Vec<Option<String>>,
}

impl Logs {
    fn push(
        &mut self,
        c: &Claimed,
        wamid: Option<String>,
        status: &'static str,
        response: Option<Value>,
    ) {
        self.seq.push(c.seq);
        self.contact_id.push(c.contact_id);
        self.mobile.push(c.mobile.clone());
        self.country.push(c.country.clone());
        self.wamid.push(wamid);
        self.status.push(status);
        self.response.push(response);
        self.error_code.push(None);
        self.error_title.push(None);
        self.error_message.push(None);
    }
}

impl Dispatcher {
    pub(crate) async fn record(
        &self,
        ctx: &CampaignContext,
        attempt_id: Uuid,
        claimed: &[Claimed],
        outcomes: Vec<(usize, Outcome)>,
        pause: Option<PauseReason>,
    ) -> Result<BatchCounts, DispatchError> {
        let mut sent = SentCols::default();
        let mut failed = FailedCols::default();
        let mut retry = RetryCols::default();
        let mut skipped: Vec<i32> = Vec::new();
        // Meta answered with an error worth retrying (not a release of an unsent message).
        let mut meta_retries: u64 = 0;
        let mut logs = Logs::default();
        let mut counts = BatchCounts::default();
        // Log rows are written only for recipients whose update matched (the guard).
        let mut pending_logs: Vec<(i32, usize)> = Vec::new();
        for (index, outcome) in outcomes {
            let Some(c) = claimed.get(index) else {
                continue;
            };
            match outcome {
                Outcome::Sent { wamid, raw } => {
                    sent.seq.push(c.seq);
                    sent.wamid.push(wamid.clone());
                    pending_logs.push((c.seq, logs.seq.len()));
                    logs.push(c, Some(wamid), "PENDING", Some(raw));
                }
                Outcome::Failed {
                    code,
                    title,
                    message,
                    retryable,
                } => {
                    failed.seq.push(c.seq);
                    failed.code.push(code);
                    failed.message.push(message.clone());
                    failed.retryable.push(retryable);
                    pending_logs.push((c.seq, logs.seq.len()));
                    logs.push(c, None, "FAILED", None);
                    if let Some(last) = logs.error_code.last_mut() {
                        *last = code;
                    }
                    if let Some(last) = logs.error_title.last_mut() {
                        *last = title;
                    }
                    if let Some(last) = logs.error_message.last_mut() {
                        *last = Some(message);
                    }
                }
                Outcome::Retry {
                    delay,
                    code,
                    message,
                    counted,
                } => {
                    meta_retries += u64::from(message.is_some());
                    retry.seq.push(c.seq);
                    retry
                        .delay_ms
                        .push(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                    retry.code.push(code);
                    retry.message.push(message);
                    retry.uncount.push(i16::from(!counted));
                }
                Outcome::Skipped => skipped.push(c.seq),
                Outcome::Ambiguous => counts.ambiguous += 1,
            }
        }

        let mut tx = self.pg().begin().await?;
        // Locked first, as the API's cancel does: a cancel either sees this batch's rows back
        // to PENDING (and cancels them) or has committed, and the unsent rows are cancelled here.
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1 FOR UPDATE")
                .bind(ctx.campaign_id)
                .fetch_optional(&mut *tx)
                .await?;
        let cancelled = matches!(status.as_deref(), Some("CANCELLED" | "FAILED"));
        let sent_seqs: Vec<i32> = sqlx::query_scalar(
            "UPDATE campaign_recipients r \
             SET status = 'SENT', wa_message_id = u.wamid, sent_at = now(), next_attempt_at = NULL \
             FROM unnest($3::int[], $4::text[]) AS u(seq, wamid) \
             WHERE r.campaign_id = $1 AND r.seq = u.seq AND r.attempt_id = $2 AND r.status = 'SENDING' \
             RETURNING r.seq",
        )
        .bind(ctx.campaign_id)
        .bind(attempt_id)
        .bind(&sent.seq)
        .bind(&sent.wamid)
        .fetch_all(&mut *tx)
        .await?;
        let failed_seqs: Vec<i32> = sqlx::query_scalar(
            "UPDATE campaign_recipients r \
             SET status = 'FAILED', error_code = u.code, error_message = u.message, \
                 retryable = u.retryable, failed_at = now(), next_attempt_at = NULL \
             FROM unnest($3::int[], $4::int[], $5::text[], $6::bool[]) AS u(seq, code, message, retryable) \
             WHERE r.campaign_id = $1 AND r.seq = u.seq AND r.attempt_id = $2 AND r.status = 'SENDING' \
             RETURNING r.seq",
        )
        .bind(ctx.campaign_id)
        .bind(attempt_id)
        .bind(&failed.seq)
        .bind(&failed.code)
        .bind(&failed.message)
        .bind(&failed.retryable)
        .fetch_all(&mut *tx)
        .await?;
        let retried = sqlx::query(
            "UPDATE campaign_recipients r \
             SET status = CASE WHEN $8 THEN 'CANCELLED' ELSE 'PENDING' END, next_attempt_at = now() + u.delay_ms * interval '1 millisecond', \
                 attempts = greatest(r.attempts - u.uncount, 0), \
                 error_code = coalesce(u.code, r.error_code), \
                 error_message = coalesce(u.message, r.error_message) \
             FROM unnest($3::int[], $4::bigint[], $5::int[], $6::text[], $7::smallint[]) \
                  AS u(seq, delay_ms, code, message, uncount) \
             WHERE r.campaign_id = $1 AND r.seq = u.seq AND r.attempt_id = $2 AND r.status = 'SENDING'",
        )
        .bind(ctx.campaign_id)
        .bind(attempt_id)
        .bind(&retry.seq)
        .bind(&retry.delay_ms)
        .bind(&retry.code)
        .bind(&retry.message)
        .bind(&retry.uncount)
        .bind(cancelled)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        let skipped = sqlx::query(
            "UPDATE campaign_recipients r SET status = 'SKIPPED', next_attempt_at = NULL, \
                 attempts = greatest(r.attempts - 1, 0), \
                 error_message = 'SKIPPED: the contact opted out after the launch' \
             WHERE r.campaign_id = $1 AND r.seq = ANY($3) AND r.attempt_id = $2 AND r.status = 'SENDING'",
        )
        .bind(ctx.campaign_id)
        .bind(attempt_id)
        .bind(&skipped)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let applied: std::collections::HashSet<i32> = sent_seqs
            .iter()
            .chain(failed_seqs.iter())
            .copied()
            .collect();
        let keep: Vec<usize> = pending_logs
            .iter()
            .filter(|(seq, _)| applied.contains(seq))
            .map(|&(_, i)| i)
            .collect();
        if !keep.is_empty() {
            sqlx::query(
                "INSERT INTO message_logs (vendor_id, campaign_id, recipient_seq, direction, message_type, \
                     template_id, template_category, phone_number_id, contact_id, recipient, country, \
                     wa_message_id, status, meta_response, error_code, error_title, error_message, failed_at) \
                 SELECT $1, $2, u.seq, 'OUTBOUND', 'template', $3, $4, $5, u.contact_id, u.mobile, \
                     u.country, u.wamid, u.status, u.response, u.code, u.title, u.message, \
                     CASE WHEN u.status = 'FAILED' THEN now() END \
                 FROM unnest($6::int[], $7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[], \
                             $12::jsonb[], $13::int[], $14::text[], $15::text[]) \
                      AS u(seq, contact_id, mobile, country, wamid, status, response, code, title, message) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(ctx.vendor_id)
            .bind(ctx.campaign_id)
            .bind(ctx.template_id)
            .bind(&ctx.category)
            .bind(&ctx.phone_number_id)
            .bind(keep.iter().map(|i| logs.seq[*i]).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.contact_id[*i]).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.mobile[*i].clone()).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.country[*i].clone()).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.wamid[*i].clone()).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.status[*i]).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.response[*i].clone()).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.error_code[*i]).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.error_title[*i].clone()).collect::<Vec<_>>())
            .bind(keep.iter().map(|i| logs.error_message[*i].clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }

        counts.sent = i32::try_from(sent_seqs.len()).unwrap_or(i32::MAX);
        counts.failed = i32::try_from(failed_seqs.len()).unwrap_or(i32::MAX);
        let retried = i32::try_from(retried).unwrap_or(i32::MAX);
        let (retried, cancelled_now) = if cancelled {
            (0, retried)
        } else {
            (retried, 0)
        };
        counts.retried = retried;
        counts.skipped = i32::try_from(skipped).unwrap_or(i32::MAX);
        sqlx::query(
            "UPDATE campaigns SET sent_count = sent_count + $2, failed_count = failed_count + $3, \
                 skipped_count = skipped_count + $4, \
                 pending_count = greatest(pending_count - $2 - $3 - $4 - $5, 0), \
                 last_sent_at = CASE WHEN $2 > 0 THEN now() ELSE last_sent_at END, \
                 last_progress_at = now() \
             WHERE id = $1",
        )
        .bind(ctx.campaign_id)
        .bind(counts.sent)
        .bind(counts.failed)
        .bind(counts.skipped)
        .bind(cancelled_now)
        .execute(&mut *tx)
        .await?;
        if let Some(reason) = pause {
            let paused = sqlx::query(
                "UPDATE campaigns SET status = 'PAUSED', pause_reason = $2, paused_at = now() \
                 WHERE id = $1 AND status = 'PROCESSING'",
            )
            .bind(ctx.campaign_id)
            .bind(reason.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if paused == 1 {
                tracing::warn!(campaign.id = %ctx.campaign_id, reason = reason.as_str(), "campaign paused by Meta's answer");
            }
        }
        tx.commit().await?;

        metrics::counter!("campaign_messages_sent_total")
            .increment(u64::try_from(counts.sent).unwrap_or(0));
        metrics::counter!("campaign_messages_failed_total")
            .increment(u64::try_from(counts.failed).unwrap_or(0));
        metrics::counter!("campaign_messages_retried_total").increment(meta_retries);
        Ok(counts)
    }
}
