//! "New rows in the inbox": a Redis stream entry per committed batch wakes every processor
//! copy at once; a processor in the same process is woken directly. Losing a notification
//! costs only latency: processors also poll the inbox.

use std::sync::Arc;
use std::time::Duration;

use kloyst_queue::redis::{self, streams::StreamReadReply};
use kloyst_queue::Pool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Stream entries kept (approximately): they only wake readers.
const STREAM_MAX_LEN: usize = 1000;

#[derive(Clone)]
pub struct InboxNotifier {
    redis: Pool,
    stream: String,
    local: Arc<Notify>,
}

impl InboxNotifier {
    pub fn new(redis: Pool, key_prefix: &str) -> Self {
        Self {
            redis,
            stream: format!("{key_prefix}:stream:webhook-inbox"),
            local: Arc::new(Notify::new()),
        }
    }

    /// Announces committed rows.
    pub async fn notify_new(&self) {
        self.local.notify_waiters();
        self.local.notify_one();
        let result: Result<(), String> = async {
            let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
            redis::cmd("XADD")
                .arg(&self.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*")
                .arg("n")
                .arg(1)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(error) = result {
            // The poll picks the rows up; only the wake-up was lost.
            tracing::warn!(%error, "could not announce new inbox rows");
        }
    }

    /// Waits for an announcement or `timeout`, whichever comes first.
    pub async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.local.notified()).await;
    }

    /// Relays other processes' announcements (the Redis stream) to this process's waiters,
    /// until `shutdown`.
    pub async fn listen(&self, shutdown: CancellationToken) {
        let mut last_id = "$".to_owned();
        while !shutdown.is_cancelled() {
            let read = tokio::select! {
                () = shutdown.cancelled() => break,
                read = self.read_after(&last_id) => read,
            };
            match read {
                Ok(Some(id)) => {
                    last_id = id;
                    self.local.notify_waiters();
                    self.local.notify_one();
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%error, "inbox notification stream unavailable");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn read_after(&self, last_id: &str) -> Result<Option<String>, String> {
        let mut conn = self.redis.get().await.map_err(|e| e.to_string())?;
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(2000)
            .arg("COUNT")
            .arg(100)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(last_id)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(reply.and_then(|reply| {
            reply
                .keys
                .into_iter()
                .flat_map(|key| key.ids)
                .map(|entry| entry.id)
                .next_back()
        }))
    }
}
