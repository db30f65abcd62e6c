//! A durable work queue on one Redis stream with a consumer group.
//!
//! `push` appends a JSON job (`push_many` a batch of them in one round trip); `claim` hands new entries to this node (they stay in the group's
//! pending list until `ack`); `reclaim` takes over entries another consumer has held longer
//! than a threshold — a node that died, or this node before a restart under another name. So a
//! job that reached the queue is worked at least once whatever node dies. Polling instead of
//! `XREADGROUP BLOCK`: the connection is multiplexed, and a blocking read would stall every
//! other command on it.

use super::RedisClient;
use crate::error::Result;
use redis::cmd;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use std::sync::atomic::{AtomicBool, Ordering};

const GROUP: &str = "workers";
/// The stream field holding an entry's JSON (also written by the store's append script).
pub const FIELD: &str = "j";

/// See the module docs.
#[derive(Debug)]
pub struct StreamQueue {
    redis: RedisClient,
    key: String,
    group_ready: AtomicBool,
}

/// A claimed entry: its stream id (for `ack`) and its payload.
pub type Entry = (String, String);

impl StreamQueue {
    pub fn new(redis: RedisClient, key: String) -> StreamQueue {
        StreamQueue { redis, key, group_ready: AtomicBool::new(false) }
    }

    async fn ensure_group(&self) -> Result<()> {
        if self.group_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let c = cmd("XGROUP").arg("CREATE").arg(&self.key).arg(GROUP).arg("0").arg("MKSTREAM").clone();
        match self.redis.query::<()>(&c).await {
            Ok(()) => {}
            Err(e) if e.message().contains("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        self.group_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn forget_group_on(&self, e: crate::error::Error) -> crate::error::Error {
        if e.message().contains("NOGROUP") {
            self.group_ready.store(false, Ordering::Relaxed);
        }
        e
    }

    fn entries(ids: Vec<StreamId>) -> Vec<Entry> {
        ids.into_iter().filter_map(|s| s.get::<String>(FIELD).map(|j| (s.id, j))).collect()
    }

    pub async fn push(&self, payload: &str) -> Result<()> {
        self.redis.query::<String>(cmd("XADD").arg(&self.key).arg("*").arg(FIELD).arg(payload)).await?;
        Ok(())
    }

    /// Appends `payloads` in order in one round trip: one pipeline of `XADD`s, all on this
    /// queue's one key (so one slot on a cluster). Not atomic: after an error some may be in.
    pub async fn push_many(&self, payloads: &[String]) -> Result<()> {
        match payloads {
            [] => Ok(()),
            [one] => self.push(one).await,
            many => {
                let mut p = redis::pipe();
                for payload in many {
                    p.cmd("XADD").arg(&self.key).arg("*").arg(FIELD).arg(payload).ignore();
                }
                self.redis.pipe::<()>(&p).await
            }
        }
    }

    /// Up to `max` entries nobody has claimed yet.
    pub async fn claim(&self, consumer: &str, max: usize) -> Result<Vec<Entry>> {
        self.ensure_group().await?;
        let c = cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(max)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">")
            .clone();
        let reply: Option<StreamReadReply> = self.redis.query(&c).await.map_err(|e| self.forget_group_on(e))?;
        Ok(Self::entries(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect()))
    }

    /// Up to `max` entries held by any consumer for longer than `min_idle_ms`, now ours
    /// (walks the whole pending list, 100 entries per `XAUTOCLAIM`).
    pub async fn reclaim(&self, consumer: &str, min_idle_ms: u64, max: usize) -> Result<Vec<Entry>> {
        self.ensure_group().await?;
        let mut cursor = "0-0".to_string();
        let mut out = Vec::new();
        while out.len() < max {
            let c = cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(GROUP)
                .arg(consumer)
                .arg(min_idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(100.min(max - out.len()))
                .clone();
            let reply: StreamAutoClaimReply = self.redis.query(&c).await.map_err(|e| self.forget_group_on(e))?;
            out.extend(Self::entries(reply.claimed));
            cursor = reply.next_stream_id;
            if cursor == "0-0" {
                break;
            }
        }
        Ok(out)
    }

    /// Settles an entry: removed from the pending list and from the stream.
    pub async fn ack(&self, id: &str) -> Result<()> {
        let mut p = redis::pipe();
        p.cmd("XACK").arg(&self.key).arg(GROUP).arg(id).ignore();
        p.cmd("XDEL").arg(&self.key).arg(id).ignore();
        self.redis.pipe::<()>(&p).await
    }
}
