//! The periodic safety net: recipients a dead worker left SENDING, and campaigns that stopped
//! moving.
//!
//! **The no-double-send rule.** A recipient SENDING for longer than `CAMPAIGN_SENDING_LEASE`
//! (a live job records within seconds) is never resent. If a status webhook
//! (`message_status_events`) carries its exact callback data `c:{campaign}:{seq}:{attempt}`,
//! Meta accepted that attempt: it becomes SENT with that wamid (and gets its message log).
//! Otherwise it becomes UNKNOWN and is counted in `unknown_count`: reported, never resent
//! automatically (retry-failed leaves it out too). A status webhook with its callback data
//! that arrives later (the webhook-worker was down, Meta was slow) turns it SENT after all,
//! so its statuses apply and its charge is made.
//!
//! **The watchdog.** A QUEUED or PROCESSING campaign with recipients PENDING and no progress
//! for `CAMPAIGN_WATCHDOG` is planned again (its jobs were lost), at most once per
//! `CAMPAIGN_WATCHDOG`; the re-plan is stamped in `replanned_at`, not `last_progress_at`, so
//! it never passes for progress. One still without progress after
//! `CAMPAIGN_WATCHDOG_FAIL_AFTER` is FAILED (WATCHDOG_TIMEOUT), its hold released
//! ([`kloyst_campaigns::fail_stalled`]). A recipient still SENDING holds that off: the
//! reconciler settles it (SENT or UNKNOWN) once its lease ends, and that is progress.

use std::collections::{BTreeSet, HashMap};

use kloyst_campaigns::jobs::DispatchCampaign;
use kloyst_queue::OutgoingMessage;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::send::callback_data;
use crate::{DispatchError, Dispatcher};

/// Stuck recipients settled per transaction.
const RECONCILE_BATCH: i64 = 1000;
/// How long an UNKNOWN recipient is still looked for in later status webhooks. Meta posts
/// `sent` within seconds; a status parked longer than the applier's park timeout is
/// dead-lettered anyway.
const UNKNOWN_LOOKBACK: &str = "1 hour";

/// What one [`Dispatcher::reconcile`] pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// SENDING recipients found accepted by Meta (a status with their callback data).
    pub resolved_sent: u64,
    /// SENDING recipients with no trace at Meta: now UNKNOWN.
    pub marked_unknown: u64,
    /// UNKNOWN recipients a later status webhook showed Meta accepted: now SENT.
    pub resolved_unknown: u64,
    /// Campaigns the pass completed.
    pub completed: Vec<Uuid>,
    /// Stalled campaigns re-planned (DispatchCampaign published again).
    pub replanned: Vec<Uuid>,
    /// Campaigns stalled past `CAMPAIGN_WATCHDOG_FAIL_AFTER`: now FAILED (WATCHDOG_TIMEOUT).
    pub failed: Vec<Uuid>,
}

impl Dispatcher {
    /// Runs [`Self::reconcile`] every `CAMPAIGN_RECONCILE_INTERVAL` until `shutdown`. Every
    /// worker copy may run it: its updates are guarded and its claims skip locked rows.
    pub async fn supervise(&self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.settings().reconcile_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.reconcile().await {
                Ok(report) if report != ReconcileReport::default() => {
                    tracing::info!(?report, "campaign reconciliation");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "campaign reconciliation failed"),
            }
            // SCHEDULED → QUEUED (their dispatch job through the outbox) when due; FAILED
            // (SCHEDULE_MISSED) when missed by more than the grace.
            if let Err(error) = self.start_due_scheduled().await {
                tracing::warn!(%error, "starting scheduled campaigns failed");
            }
        }
    }

    /// Starts the SCHEDULED campaigns that are due ([`kloyst_campaigns::start_due_scheduled`]).
    pub async fn start_due_scheduled(
        &self,
    ) -> Result<kloyst_campaigns::SchedulerReport, kloyst_campaigns::CampaignError> {
        let grace = chrono::Duration::from_std(self.settings().schedule_grace)
            .unwrap_or(chrono::Duration::MAX);
        kloyst_campaigns::start_due_scheduled(self.pg(), chrono::Utc::now(), grace).await
    }

    /// One pass: settle stuck SENDING recipients, complete finished campaigns, fail the ones
    /// stalled past `CAMPAIGN_WATCHDOG_FAIL_AFTER`, re-plan the other stalled ones.
    pub async fn reconcile(&self) -> Result<ReconcileReport, DispatchError> {
        let mut report = ReconcileReport::default();
        let mut touched = BTreeSet::new();
        loop {
            let (sent, unknown, campaigns) = self.settle_stuck().await?;
            report.resolved_sent += sent;
            report.marked_unknown += unknown;
            touched.extend(campaigns);
            if sent + unknown < u64::try_from(RECONCILE_BATCH).unwrap_or(u64::MAX) {
                break;
            }
        }
        let (resolved, campaigns) = self.resolve_unknown().await?;
        report.resolved_unknown = resolved;
        touched.extend(campaigns);
        for campaign_id in touched {
            if self.try_complete(campaign_id).await? {
                report.completed.push(campaign_id);
            }
        }
        report.completed.extend(self.complete_idle().await?);
        // Before the re-plan: a campaign failed now gets no job published for it.
        let settings = self.settings();
        report.failed = kloyst_campaigns::fail_stalled(
            self.pg(),
            settings.watchdog,
            settings.watchdog_fail_after,
        )
        .await?;
        report.replanned = self.replan_stalled().await?;
        Ok(report)
    }

    async fn settle_stuck(&self) -> Result<(u64, u64, Vec<Uuid>), DispatchError> {
        let lease_ms = i64::try_from(self.settings().sending_lease.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.pg().begin().await?;
        let stuck: Vec<(Uuid, i32, Uuid)> = sqlx::query_as(
            "SELECT campaign_id, seq, attempt_id FROM campaign_recipients \
             WHERE status = 'SENDING' AND sending_at < now() - $1 * interval '1 millisecond' \
             ORDER BY campaign_id, seq LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(lease_ms)
        .bind(RECONCILE_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if stuck.is_empty() {
            return Ok((0, 0, Vec::new()));
        }
        let keys: Vec<String> = stuck
            .iter()
            .map(|&(campaign, seq, attempt)| callback_data(campaign, seq, attempt))
            .collect();
        let found = accepted_attempts(&mut tx, &keys).await?;
        let mut sent = Accepted::default();
        let mut unknown: (Vec<Uuid>, Vec<i32>, Vec<Uuid>) = Default::default();
        for (&(campaign, seq, attempt), key) in stuck.iter().zip(&keys) {
            match found.get(key) {
                Some(wamid) => {
                    sent.0.push(campaign);
                    sent.1.push(seq);
                    sent.2.push(attempt);
                    sent.3.push(wamid.clone());
                }
                None => {
                    unknown.0.push(campaign);
                    unknown.1.push(seq);
                    unknown.2.push(attempt);
                }
            }
        }
        let sent_rows = self.mark_sent(&mut tx, &sent, "SENDING").await?;
        let unknown_rows: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE campaign_recipients r SET status = 'UNKNOWN', \
                 error_message = 'UNKNOWN: the worker sending it stopped before recording Meta''s answer; not resent' \
             FROM unnest($1::uuid[], $2::int[], $3::uuid[]) AS u(campaign_id, seq, attempt_id) \
             WHERE r.campaign_id = u.campaign_id AND r.seq = u.seq AND r.attempt_id = u.attempt_id \
               AND r.status = 'SENDING' \
             RETURNING r.campaign_id",
        )
        .bind(&unknown.0)
        .bind(&unknown.1)
        .bind(&unknown.2)
        .fetch_all(&mut *tx)
        .await?;

        let mut per_campaign: HashMap<Uuid, (i32, i32)> = HashMap::new();
        for (campaign, _) in &sent_rows {
            per_campaign.entry(*campaign).or_default().0 += 1;
        }
        for campaign in &unknown_rows {
            per_campaign.entry(*campaign).or_default().1 += 1;
        }
        for (campaign, (sent, unknown)) in &per_campaign {
            sqlx::query(
                "UPDATE campaigns SET sent_count = sent_count + $2, unknown_count = unknown_count + $3, \
                     pending_count = greatest(pending_count - $2 - $3, 0), last_progress_at = now(), \
                     last_sent_at = CASE WHEN $2 > 0 THEN now() ELSE last_sent_at END \
                 WHERE id = $1",
            )
            .bind(campaign)
            .bind(sent)
            .bind(unknown)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if !unknown_rows.is_empty() {
            tracing::warn!(
                count = unknown_rows.len(),
                "recipients left SENDING by a dead worker marked UNKNOWN (not resent)"
            );
        }
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok((
            as_u64(sent_rows.len()),
            as_u64(unknown_rows.len()),
            per_campaign.into_keys().collect(),
        ))
    }

    /// UNKNOWN recipients of the last [`UNKNOWN_LOOKBACK`] whose attempt a status webhook
    /// has since shown Meta accepted (the webhook came after the lease ran out, e.g. while the
    /// webhook-worker was down): SENT after all, so their statuses apply and charge, and the
    /// campaign's counters match Meta's record. The others stay UNKNOWN, never resent.
    async fn resolve_unknown(&self) -> Result<(u64, Vec<Uuid>), DispatchError> {
        let mut tx = self.pg().begin().await?;
        let unknown: Vec<(Uuid, i32, Uuid)> = sqlx::query_as(
            "SELECT campaign_id, seq, attempt_id FROM campaign_recipients \
             WHERE status = 'UNKNOWN' AND sending_at > now() - $2::interval \
             ORDER BY campaign_id, seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(RECONCILE_BATCH)
        .bind(UNKNOWN_LOOKBACK)
        .fetch_all(&mut *tx)
        .await?;
        if unknown.is_empty() {
            return Ok((0, Vec::new()));
        }
        let keys: Vec<String> = unknown
            .iter()
            .map(|&(campaign, seq, attempt)| callback_data(campaign, seq, attempt))
            .collect();
        let found = accepted_attempts(&mut tx, &keys).await?;
        let mut accepted = Accepted::default();
        for (&(campaign, seq, attempt), key) in unknown.iter().zip(&keys) {
            if let Some(wamid) = found.get(key) {
                accepted.0.push(campaign);
                accepted.1.push(seq);
                accepted.2.push(attempt);
                accepted.3.push(wamid.clone());
            }
        }
        if accepted.0.is_empty() {
            return Ok((0, Vec::new()));
        }
        let sent_rows = self.mark_sent(&mut tx, &accepted, "UNKNOWN").await?;
        let mut per_campaign: HashMap<Uuid, i32> = HashMap::new();
        for (campaign, _) in &sent_rows {
            *per_campaign.entry(*campaign).or_default() += 1;
        }
        for (campaign, sent) in &per_campaign {
            sqlx::query(
                "UPDATE campaigns SET sent_count = sent_count + $2, \
                     unknown_count = greatest(unknown_count - $2, 0), last_progress_at = now(), \
                     last_sent_at = now() \
                 WHERE id = $1",
            )
            .bind(campaign)
            .bind(sent)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(
            count = sent_rows.len(),
            "UNKNOWN recipients found accepted by Meta in later status webhooks: SENT"
        );
        Ok((
            u64::try_from(sent_rows.len()).unwrap_or(u64::MAX),
            per_campaign.into_keys().collect(),
        ))
    }

    /// Recipients in `from` (SENDING, or UNKNOWN) whose attempt a status webhook shows Meta
    /// accepted: SENT with that wamid, and the message log the dead job never wrote, so the
    /// statuses parked for the wamid apply. Returns the rows changed.
    async fn mark_sent(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        sent: &Accepted,
        from: &str,
    ) -> Result<Vec<(Uuid, i32)>, DispatchError> {
        let sent_rows: Vec<(Uuid, i32)> = sqlx::query_as(
                "UPDATE campaign_recipients r SET status = 'SENT', wa_message_id = u.wamid, sent_at = now() \
                 FROM unnest($1::uuid[], $2::int[], $3::uuid[], $4::text[]) AS u(campaign_id, seq, attempt_id, wamid) \
                 WHERE r.campaign_id = u.campaign_id AND r.seq = u.seq AND r.attempt_id = u.attempt_id \
                   AND r.status = $5 \
                 RETURNING r.campaign_id, r.seq",
            )
            .bind(&sent.0)
            .bind(&sent.1)
            .bind(&sent.2)
            .bind(&sent.3)
            .bind(from)
            .fetch_all(&mut **tx)
            .await?;
        if !sent_rows.is_empty() {
            let (campaigns, seqs): (Vec<Uuid>, Vec<i32>) = sent_rows.iter().copied().unzip();
            // The log the dead job never wrote, so the statuses parked for this wamid apply.
            sqlx::query(
                    "INSERT INTO message_logs (vendor_id, campaign_id, recipient_seq, direction, message_type, \
                         template_id, template_category, phone_number_id, contact_id, recipient, country, \
                         wa_message_id, status) \
                     SELECT r.vendor_id, r.campaign_id, r.seq, 'OUTBOUND', 'template', c.template_id, \
                         coalesce(t.meta_category, t.category), coalesce(p.phone_number_id, $3), \
                         r.contact_id, r.mobile, r.country, r.wa_message_id, 'PENDING' \
                     FROM unnest($1::uuid[], $2::int[]) AS u(campaign_id, seq) \
                     JOIN campaign_recipients r ON r.campaign_id = u.campaign_id AND r.seq = u.seq \
                     JOIN campaigns c ON c.id = r.campaign_id \
                     JOIN templates t ON t.vendor_id = c.vendor_id AND t.id = c.template_id \
                     LEFT JOIN phone_numbers p ON p.id = c.phone_number_id \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&campaigns)
                .bind(&seqs)
                .bind(&self.settings().default_phone_number_id)
                .execute(&mut **tx)
                .await?;
            // Statuses already dead-lettered for want of this log (the park timeout passed
            // before the recipient was resolved) are due again, so they apply and charge.
            sqlx::query(
                "UPDATE message_status_events \
                 SET dead_at = NULL, dead_reason = NULL, attempts = 0, next_attempt_at = NULL \
                 WHERE dead_at IS NOT NULL AND wa_message_id = ANY($1)",
            )
            .bind(&sent.3)
            .execute(&mut **tx)
            .await?;
        }
        Ok(sent_rows)
    }

    /// PROCESSING campaigns idle for a reconcile interval with nothing PENDING or SENDING.
    async fn complete_idle(&self) -> Result<Vec<Uuid>, DispatchError> {
        let idle_ms =
            i64::try_from(self.settings().reconcile_interval.as_millis()).unwrap_or(i64::MAX);
        Ok(sqlx::query_scalar(
            "UPDATE campaigns c SET status = 'COMPLETED', finished_at = now(), last_progress_at = now() \
             WHERE c.status = 'PROCESSING' \
               AND greatest(c.last_progress_at, c.queued_at, c.started_at, c.created_at) < now() - $1 * interval '1 millisecond' \
               AND NOT EXISTS (SELECT 1 FROM campaign_recipients r \
                               WHERE r.campaign_id = c.id AND r.status IN ('PENDING', 'SENDING')) \
             RETURNING c.id",
        )
        .bind(idle_ms)
        .fetch_all(self.pg())
        .await?)
    }

    /// QUEUED or PROCESSING campaigns without progress (nor a re-plan) for
    /// `CAMPAIGN_WATCHDOG` while recipients are still PENDING: their jobs were lost; plan
    /// them again. The re-plan is stamped in `replanned_at`: it is not progress, so a
    /// campaign that never moves is failed by the watchdog in the end.
    async fn replan_stalled(&self) -> Result<Vec<Uuid>, DispatchError> {
        let watchdog_ms = i64::try_from(self.settings().watchdog.as_millis()).unwrap_or(i64::MAX);
        let stalled: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE campaigns c SET replanned_at = now() \
             WHERE c.status IN ('QUEUED', 'PROCESSING') \
               AND greatest(c.last_progress_at, c.queued_at, c.started_at, c.created_at, c.replanned_at) \
                   < now() - $1 * interval '1 millisecond' \
               AND EXISTS (SELECT 1 FROM campaign_recipients r \
                           WHERE r.campaign_id = c.id AND r.status = 'PENDING') \
             RETURNING c.id, c.vendor_id",
        )
        .bind(watchdog_ms)
        .fetch_all(self.pg())
        .await?;
        let mut replanned = Vec::with_capacity(stalled.len());
        for (campaign_id, vendor_id) in stalled {
            tracing::warn!(campaign.id = %campaign_id, "campaign stalled: planned again");
            let job = DispatchCampaign {
                campaign_id,
                vendor_id,
            };
            self.jobs()
                .publish(&OutgoingMessage::from_job(&job)?)
                .await?;
            replanned.push(campaign_id);
        }
        Ok(replanned)
    }
}

/// `(campaign_id, seq, attempt_id, wamid)` columns of recipients Meta accepted.
#[derive(Default)]
struct Accepted(Vec<Uuid>, Vec<i32>, Vec<Uuid>, Vec<String>);

/// The wamid of each callback data (`c:{campaign}:{seq}:{attempt}`) a status webhook carried.
///
/// Only statuses not applied are searched: a recipient still SENDING or UNKNOWN has no message
/// log, so every status of its send is parked (`message_status_events_due_idx`) or, after the
/// park timeout, dead (`message_status_events_dead_idx`). Both sets are small, so a pass never
/// scans the whole (fast-growing) status table.
async fn accepted_attempts(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    keys: &[String],
) -> Result<HashMap<String, String>, DispatchError> {
    let found: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT DISTINCT ON (callback) callback, wa_message_id FROM ( \
             SELECT payload ->> 'biz_opaque_callback_data' AS callback, wa_message_id, id \
             FROM message_status_events WHERE applied_at IS NULL AND dead_at IS NULL \
             UNION ALL \
             SELECT payload ->> 'biz_opaque_callback_data', wa_message_id, id \
             FROM message_status_events WHERE dead_at IS NOT NULL \
         ) AS unapplied \
         WHERE callback = ANY($1) \
         ORDER BY callback, id",
    )
    .bind(keys)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    Ok(found)
}
