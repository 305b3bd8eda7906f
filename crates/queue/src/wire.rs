//! The wire format: field names, and parsing Redis' stream replies.
//!
//! We parse `redis::Value` ourselves instead of using redis-rs' `StreamReadReply`, which
//! clones the whole reply to try two shapes and stores every entry in a `HashMap`.

use deadpool_redis::redis::Value;

use crate::error::QueueError;
use crate::message::IncomingMessage;

pub(crate) const ID: &str = "id";
pub(crate) const KIND: &str = "kind";
pub(crate) const PAYLOAD: &str = "payload";
pub(crate) const ATTEMPT: &str = "attempt";
pub(crate) const CORRELATION_ID: &str = "correlation_id";
pub(crate) const ENQUEUED_AT: &str = "enqueued_at";
// Added by dead-lettering.
pub(crate) const ERROR: &str = "error";
pub(crate) const FAILED_AT: &str = "failed_at";
pub(crate) const ORIGINAL_ENTRY_ID: &str = "original_entry_id";
pub(crate) const GROUP: &str = "group";

/// An entry's field/value pairs, as Redis sent them.
pub(crate) type RawFields = Vec<(Vec<u8>, Vec<u8>)>;

/// One stream entry. `fields` is `None` when the entry was deleted while still pending.
#[derive(Debug)]
pub(crate) struct RawEntry {
    pub(crate) id: String,
    pub(crate) fields: Option<RawFields>,
}

/// The value of field `name`, if present.
pub(crate) fn field<'a>(fields: &'a RawFields, name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k.as_slice() == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

/// The millisecond part of an entry id (`1712345678901-0`).
pub(crate) fn entry_id_ms(entry_id: &str) -> Option<u64> {
    entry_id.split('-').next()?.parse().ok()
}

/// A message's wire fields, as `(name, value)` pairs, for re-writing it elsewhere.
pub(crate) fn message_fields(m: &IncomingMessage) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (ID, m.id.clone()),
        (KIND, m.kind.clone()),
        (PAYLOAD, m.payload.clone()),
        (ATTEMPT, m.attempt.to_string()),
        (ENQUEUED_AT, m.enqueued_at_ms.to_string()),
    ];
    if let Some(c) = &m.correlation_id {
        out.push((CORRELATION_ID, c.clone()));
    }
    out
}

fn protocol(what: &str, v: &Value) -> QueueError {
    QueueError::Protocol(format!("{what}: {v:?}"))
}

fn into_bytes(v: Value) -> Result<Vec<u8>, QueueError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        Value::VerbatimString { text, .. } => Ok(text.into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(protocol("expected a string", &other)),
    }
}

pub(crate) fn into_string(v: Value) -> Result<String, QueueError> {
    String::from_utf8(into_bytes(v)?).map_err(|_| QueueError::Protocol("non-UTF-8 entry id".into()))
}

fn into_array(v: Value) -> Result<Vec<Value>, QueueError> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(protocol("expected an array", &other)),
    }
}

/// `[id, [field, value, …] | nil]`
fn parse_entry(v: Value) -> Result<RawEntry, QueueError> {
    let mut parts = into_array(v)?.into_iter();
    let id = into_string(
        parts
            .next()
            .ok_or_else(|| QueueError::Protocol("empty stream entry".into()))?,
    )?;
    let fields = match parts.next() {
        None | Some(Value::Nil) => None,
        Some(Value::Map(pairs)) => Some(
            pairs
                .into_iter()
                .map(|(k, v)| Ok((into_bytes(k)?, into_bytes(v)?)))
                .collect::<Result<_, QueueError>>()?,
        ),
        Some(list) => {
            let mut flat = into_array(list)?.into_iter();
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                pairs.push((into_bytes(k)?, into_bytes(v)?));
            }
            Some(pairs)
        }
    };
    Ok(RawEntry { id, fields })
}

/// A list of entries (`XRANGE`, the middle of `XAUTOCLAIM`).
pub(crate) fn parse_entries(v: Value) -> Result<Vec<RawEntry>, QueueError> {
    into_array(v)?.into_iter().map(parse_entry).collect()
}

/// `XREADGROUP` on one stream: nil on timeout, else `[[key, entries]]` (RESP2) or `{key: entries}` (RESP3).
pub(crate) fn parse_read_reply(v: Value) -> Result<Vec<RawEntry>, QueueError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Map(streams) => match streams.into_iter().next() {
            Some((_, entries)) => parse_entries(entries),
            None => Ok(Vec::new()),
        },
        other => {
            let Some(stream) = into_array(other)?.into_iter().next() else {
                return Ok(Vec::new());
            };
            let mut parts = into_array(stream)?.into_iter();
            match (parts.next(), parts.next()) {
                (Some(_key), Some(entries)) => parse_entries(entries),
                _ => Err(QueueError::Protocol(
                    "XREADGROUP stream without entries".into(),
                )),
            }
        }
    }
}

/// `XAUTOCLAIM`: `[next_cursor, entries, deleted_ids]` (Redis ≥ 7 sends the third element).
pub(crate) fn parse_autoclaim(v: Value) -> Result<(String, Vec<RawEntry>), QueueError> {
    let mut parts = into_array(v)?.into_iter();
    let (Some(cursor), Some(entries)) = (parts.next(), parts.next()) else {
        return Err(QueueError::Protocol("short XAUTOCLAIM reply".into()));
    };
    Ok((into_string(cursor)?, parse_entries(entries)?))
}

/// Extended `XPENDING` for one id: `[[id, consumer, idle_ms, times_delivered]]`, or `[]` when
/// the entry is no longer pending. Returns the delivery count.
pub(crate) fn parse_delivery_count(v: Value) -> Result<Option<u64>, QueueError> {
    let Some(row) = into_array(v)?.into_iter().next() else {
        return Ok(None);
    };
    match into_array(row)?.into_iter().nth(3) {
        Some(Value::Int(n)) => Ok(Some(u64::try_from(n).unwrap_or(0))),
        Some(other) => Err(protocol("XPENDING delivery count", &other)),
        None => Err(QueueError::Protocol("short XPENDING row".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_a_resp2_read_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("k"),
            Value::Array(vec![Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![bulk("id"), bulk("m1"), bulk("kind"), bulk("k")]),
            ])]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, "1-0");
        let fields = entries[0].fields.as_ref().unwrap();
        assert_eq!(field(fields, "id"), Some(&b"m1"[..]));
        assert_eq!(field(fields, "kind"), Some(&b"k"[..]));
    }

    #[test]
    fn a_deleted_entry_has_no_fields() {
        let entries = parse_entries(Value::Array(vec![Value::Array(vec![
            bulk("2-0"),
            Value::Nil,
        ])]))
        .unwrap();
        assert!(entries[0].fields.is_none());
    }

    #[test]
    fn entry_id_time() {
        assert_eq!(entry_id_ms("1712345678901-3"), Some(1_712_345_678_901));
        assert_eq!(entry_id_ms("x"), None);
    }
}
