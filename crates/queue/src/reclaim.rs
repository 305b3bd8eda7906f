//! Re-claiming entries abandoned by dead consumers, and spotting poison messages.

use deadpool_redis::redis::{self, Value};

use crate::consumer::Consumer;
use crate::error::QueueError;
use crate::message::Delivery;
use crate::wire;

/// XAUTOCLAIM rounds per `reclaim` call; each scans up to 10 × count pending entries.
const RECLAIM_ROUNDS: usize = 8;

impl Consumer {
    /// Takes over up to `count` entries that other consumers fetched but have not acknowledged
    /// for longer than the visibility timeout (they died or hung) and returns them for handling.
    ///
    /// An entry delivered more than `max_attempts` times is a poison message that keeps killing
    /// its consumers: it is dead-lettered here instead of being returned.
    pub async fn reclaim(&self, count: usize) -> Result<Vec<Delivery>, QueueError> {
        let count = count.max(1);
        let stream = &self.queue().keys().stream;
        let min_idle =
            u64::try_from(self.queue().config().visibility_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut cursor = "0-0".to_owned();
        let mut claimed = Vec::new();
        for _ in 0..RECLAIM_ROUNDS {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(stream)
                .arg(self.group())
                .arg(self.name())
                .arg(min_idle)
                .arg(&cursor)
                .arg("COUNT")
                .arg(count - claimed.len());
            let (next, entries) = wire::parse_autoclaim(self.query(&cmd).await?)?;
            claimed.extend(entries);
            if next == "0-0" || claimed.len() >= count {
                break;
            }
            cursor = next;
        }
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        metrics::counter!("queue_reclaimed_total", "stream" => self.queue().name().to_owned())
            .increment(claimed.len() as u64);

        // XAUTOCLAIM does not say how often an entry was delivered; XPENDING's extended form
        // does, one id per command, all in one round trip.
        let mut pipe = redis::Pipeline::with_capacity(claimed.len());
        for entry in &claimed {
            pipe.cmd("XPENDING")
                .arg(stream)
                .arg(self.group())
                .arg(&entry.id)
                .arg(&entry.id)
                .arg(1)
                .arg(self.name());
        }
        let mut conn = self.queue().conn().await?;
        let counts: Vec<Value> = pipe.query_async(&mut conn).await?;
        drop(conn);

        let max = u64::from(self.queue().config().max_attempts);
        let mut keep = Vec::with_capacity(claimed.len());
        for (entry, reply) in claimed.into_iter().zip(counts) {
            match wire::parse_delivery_count(reply)? {
                // Acknowledged by its previous owner in the meantime: not ours to handle.
                None => {}
                Some(n) if n > max => {
                    let error = format!("delivered {n} times without being acknowledged (its consumers crash or hang)");
                    let fields = entry.fields.unwrap_or_default();
                    let pairs = fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
                    // On a Redis error the entry stays pending and the next re-claim tries again.
                    match self
                        .dead_letter_raw(&entry.id, pairs, &error, "poison")
                        .await
                    {
                        Ok(_) => tracing::error!(
                            queue.stream = self.queue().name(),
                            entry.id = %entry.id,
                            deliveries = n,
                            "poison message dead-lettered"
                        ),
                        Err(e) => tracing::warn!(
                            error = %e,
                            entry.id = %entry.id,
                            "could not dead-letter a poison message"
                        ),
                    }
                }
                Some(_) => keep.push(entry),
            }
        }
        Ok(self.to_deliveries(keep).await)
    }
}
