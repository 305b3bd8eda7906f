//! Key names. All of them derive from the prefix so one `SCAN prefix:*` finds a queue's state.

/// The Redis keys of one named queue.
#[derive(Debug, Clone)]
pub struct Keys {
    /// `{prefix}:stream:{name}`: the work stream.
    pub stream: String,
    /// `{prefix}:delayed:{name}`: sorted set of retries, scored by due time (unix ms).
    pub delayed: String,
    /// `{prefix}:dead:{name}`: dead-letter stream.
    pub dead: String,
}

impl Keys {
    /// Keys of queue `name` under `prefix`.
    pub fn new(prefix: &str, name: &str) -> Self {
        Self {
            stream: format!("{prefix}:stream:{name}"),
            delayed: format!("{prefix}:delayed:{name}"),
            dead: format!("{prefix}:dead:{name}"),
        }
    }
}

/// `{prefix}:done:{group}:{message_id}`: marks a message as applied by `group`.
pub fn done_key(prefix: &str, group: &str, message_id: &str) -> String {
    format!("{prefix}:done:{group}:{message_id}")
}
