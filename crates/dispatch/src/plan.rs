//! `campaign.dispatch`: QUEUED → PROCESSING, then one [`SendRange`] job per stripe of the
//! recipients still PENDING.

use kloyst_campaigns::jobs::{DispatchCampaign, SendRange};
use kloyst_queue::OutgoingMessage;
use uuid::Uuid;

use crate::{DispatchError, Dispatcher};

/// What a [`Dispatcher::dispatch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// No such campaign (of that vendor).
    Missing,
    /// The campaign is not QUEUED or PROCESSING (paused, cancelled, finished): nothing to do.
    NotRunnable { status: String },
    /// These stripes were published.
    Planned { ranges: Vec<(i32, i32)> },
    /// Nothing was PENDING: the campaign was completed if nothing is SENDING either.
    NothingPending,
}

impl Dispatcher {
    /// Starts (or re-plans) a campaign. Idempotent: a redelivered job publishes the same
    /// stripes again, and their claims (`SKIP LOCKED` + status) make duplicates harmless.
    #[tracing::instrument(name = "campaign.dispatch", skip_all, fields(campaign.id = %job.campaign_id))]
    pub async fn dispatch(&self, job: &DispatchCampaign) -> Result<DispatchOutcome, DispatchError> {
        let mut tx = self.pg().begin().await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM campaigns WHERE id = $1 AND vendor_id = $2 FOR UPDATE",
        )
        .bind(job.campaign_id)
        .bind(job.vendor_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(status) = status else {
            return Ok(DispatchOutcome::Missing);
        };
        match status.as_str() {
            "QUEUED" => {
                sqlx::query(
                    "UPDATE campaigns SET status = 'PROCESSING', \
                     started_at = coalesce(started_at, now()), last_progress_at = now() \
                     WHERE id = $1",
                )
                .bind(job.campaign_id)
                .execute(&mut *tx)
                .await?;
            }
            "PROCESSING" => {}
            _ => return Ok(DispatchOutcome::NotRunnable { status }),
        }
        tx.commit().await?;

        let bounds: (Option<i32>, Option<i32>) = sqlx::query_as(
            "SELECT min(seq), max(seq) FROM campaign_recipients \
             WHERE campaign_id = $1 AND status = 'PENDING'",
        )
        .bind(job.campaign_id)
        .fetch_one(self.pg())
        .await?;
        let (Some(first), Some(last)) = bounds else {
            self.try_complete(job.campaign_id).await?;
            return Ok(DispatchOutcome::NothingPending);
        };
        let ranges = stripes(
            first,
            last,
            self.settings().range_size,
            self.settings().parallel_ranges,
            2 * self.settings().claim_size(),
        );
        let jobs = ranges
            .iter()
            .map(|&(from_seq, to_seq)| {
                OutgoingMessage::from_job(&SendRange {
                    campaign_id: job.campaign_id,
                    vendor_id: job.vendor_id,
                    from_seq,
                    to_seq,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.jobs().publish_batch(&jobs).await?;
        tracing::info!(?ranges, "campaign planned");
        Ok(DispatchOutcome::Planned { ranges })
    }

    /// PROCESSING → COMPLETED once no recipient is PENDING or SENDING; true if this call did
    /// it (the status guard makes it happen once).
    pub async fn try_complete(&self, campaign_id: Uuid) -> Result<bool, DispatchError> {
        let done = sqlx::query(
            "UPDATE campaigns SET status = 'COMPLETED', finished_at = now(), last_progress_at = now() \
             WHERE id = $1 AND status = 'PROCESSING' AND NOT EXISTS ( \
                 SELECT 1 FROM campaign_recipients \
                 WHERE campaign_id = $1 AND status IN ('PENDING', 'SENDING'))",
        )
        .bind(campaign_id)
        .execute(self.pg())
        .await?
        .rows_affected()
            == 1;
        if done {
            tracing::info!(campaign.id = %campaign_id, "campaign completed");
        }
        Ok(done)
    }
}

/// `first..=last` cut into `min(parallel, ⌈len / range_size⌉)` contiguous stripes of
/// near-equal length; at least two when `len` exceeds `pair_above` (two batches), so that
/// one stripe's pause between batches (recording, claiming) is covered by the other's sends
/// and the number's rate is used in full.
pub fn stripes(
    first: i32,
    last: i32,
    range_size: i32,
    parallel: i32,
    pair_above: i64,
) -> Vec<(i32, i32)> {
    if last < first {
        return Vec::new();
    }
    let len = i64::from(last) - i64::from(first) + 1;
    let range_size = i64::from(range_size.max(1));
    let wanted = (len + range_size - 1) / range_size;
    let wanted = if len > pair_above {
        wanted.max(2)
    } else {
        wanted
    };
    let count = wanted.clamp(1, i64::from(parallel.max(1)));
    let (base, extra) = (len / count, len % count);
    let mut ranges = Vec::new();
    let mut from = i64::from(first);
    for i in 0..count {
        let size = base + i64::from(i < extra);
        let to = from + size - 1;
        // Within first..=last, so both fit in i32.
        ranges.push((
            i32::try_from(from).unwrap_or(i32::MAX),
            i32::try_from(to).unwrap_or(i32::MAX),
        ));
        from = to + 1;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::stripes;

    #[test]
    fn stripes_cover_the_range_once() {
        assert_eq!(stripes(1, 100, 2000, 4, 400), vec![(1, 100)]);
        assert_eq!(stripes(1, 800, 2000, 4, 160), vec![(1, 400), (401, 800)]);
        assert_eq!(stripes(1, 800, 2000, 1, 160), vec![(1, 800)]);
        assert_eq!(
            stripes(1, 5000, 2000, 4, 400),
            vec![(1, 1667), (1668, 3334), (3335, 5000)]
        );
        let big = stripes(1, 1_000_000, 2000, 4, 400);
        assert_eq!(big.len(), 4);
        assert_eq!(big[0].0, 1);
        assert_eq!(big[3].1, 1_000_000);
        for pair in big.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0);
        }
        assert_eq!(stripes(7, 7, 2000, 4, 400), vec![(7, 7)]);
        assert!(stripes(8, 7, 2000, 4, 400).is_empty());
    }
}
