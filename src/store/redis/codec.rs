//! Encoding records for Redis and reading script replies, shared by the Redis store's files.

use crate::error::{Error, Result};
use uuid::Uuid;

pub(super) fn encode<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal_from("encode", e))
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::internal_from("corrupt record in redis", e))
}

/// Element `i` of a script's array reply.
pub(super) fn reply_at<T: redis::FromRedisValue>(reply: &[redis::Value], i: usize) -> Result<T> {
    let v = reply.get(i).ok_or_else(|| Error::internal(format!("script reply too short: {reply:?}")))?;
    redis::from_redis_value_ref(v).map_err(|e| Error::internal_from("unexpected script reply", e))
}

/// Whether a conversation id (UUIDv7: it carries its creation time) is older than any create
/// could still be running for.
pub(super) fn is_stale(id: Uuid) -> bool {
    let Some(ts) = id.get_timestamp() else { return true };
    let (secs, _) = ts.to_unix();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    now.saturating_sub(secs) > 60
}

/// The seq of a history stream id `<seq>-1`.
pub(super) fn seq_of_stream_id(id: &str) -> Result<u64> {
    id.split('-').next().and_then(|s| s.parse().ok()).ok_or_else(|| Error::internal(format!("bad stream id {id}")))
}
