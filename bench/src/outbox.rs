//! Outbox relay throughput: committed events → Redis stream, events/s.
//!
//! The backlog is written first (one INSERT … SELECT), then K relays drain it; the clock
//! runs from the first batch to the last row marked published. As the machine's own
//! reference, the same number of bare XADDs in pipelines of 1,000 is timed in the same run.

use std::time::Instant;

use anyhow::Result;
use kloyst_outbox::{Relay, RelaySettings};
use kloyst_queue::{OutgoingMessage, Queue, QueueConfig};

use crate::{median, stores};

pub async fn run(events: i64, relays: usize, runs: usize) -> Result<()> {
    let stores = stores::fresh("kloyst_bench_outbox").await?;
    let mut rates = Vec::new();
    let mut bare_rates = Vec::new();
    for run in 1..=runs {
        sqlx::query("TRUNCATE outbox_events")
            .execute(&stores.pg)
            .await?;
        sqlx::query(
            "INSERT INTO outbox_events (stream, kind, payload, correlation_id)
             SELECT 'bench', 'bench.event',
                    jsonb_build_object('campaign_id', gen_random_uuid(), 'from', n, 'to', n + 500),
                    'req-' || n
               FROM generate_series(1, $1) n",
        )
        .bind(events)
        .execute(&stores.pg)
        .await?;
        sqlx::raw_sql("VACUUM ANALYZE outbox_events")
            .execute(&stores.pg)
            .await?;
        stores.drop_redis_keys().await?;

        let config = QueueConfig::with_prefix(stores.prefix.clone());
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..relays {
            let relay = Relay::new(
                stores.pg.clone(),
                stores.redis.clone(),
                config.clone(),
                RelaySettings::default(),
            );
            tasks.push(tokio::spawn(async move {
                let mut moved = 0usize;
                loop {
                    match relay.relay_batch().await {
                        Ok(0) => return Ok::<usize, anyhow::Error>(moved),
                        Ok(n) => moved += n,
                        Err(e) => return Err(e.into()),
                    }
                }
            }));
        }
        let mut moved = 0;
        for task in tasks {
            moved += task.await??;
        }
        let secs = started.elapsed().as_secs_f64();
        let rate = moved as f64 / secs;
        rates.push(rate);

        // The machine's reference: bare pipelined XADDs of the same messages, no Postgres.
        stores.drop_redis_keys().await?;
        let queue = Queue::new(stores.redis.clone(), config, "bare");
        let batch: Vec<OutgoingMessage> = (0..1000)
            .map(|n| {
                OutgoingMessage::new("bench.event", serde_json::json!({"campaign_id": uuid::Uuid::new_v4(), "from": n, "to": n + 500}))
                    .with_correlation_id(Some(format!("req-{n}")))
            })
            .collect();
        let started = Instant::now();
        for _ in 0..(events / 1000) {
            queue.publish_batch(&batch).await?;
        }
        let bare = (events / 1000 * 1000) as f64 / started.elapsed().as_secs_f64();
        bare_rates.push(bare);
        println!(
            "outbox run {run}/{runs}: {moved} events with {relays} relay(s) in {secs:.2} s = {rate:.0} events/s (bare XADD pipeline: {bare:.0}/s)"
        );
    }
    println!(
        "outbox relay, {relays} relay(s), {events} events: median {:.0} events/s; bare Redis XADD median {:.0}/s; target >= 20000 events/s",
        median(rates),
        median(bare_rates)
    );
    stores.drop_redis_keys().await?;
    Ok(())
}
