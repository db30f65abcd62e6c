//! `WebhookStore` on Redis, through the store's shared `RedisClient` (same connection, same
//! per-command deadline, failures as `Error::Unavailable`).
//!
//! Layout (P = `redis.key_prefix`):
//! - `P:webhooks:{webhooks}:hooks` HASH webhook id → webhook JSON (secrets included);
//!   `…:version` counter bumped on every change; `…:lease` the outbox lease (consumer name,
//!   with a TTL); `…:outbox` the outbox STREAM (field `e` = entry JSON) with consumer group
//!   `workers`. These share one hash tag so the webhook/version write is one transaction.
//! - `P:webhooks:{<webhook id>}:deliveries` ZSET of delivery ids (32 hex digits, score 0: lexical
//!   order is creation order) and `P:webhooks:{<webhook id>}:d:<delivery id>` delivery JSON,
//!   with a TTL of the retry horizon plus a week.
//!
//! The outbox holds two kinds of entries (`model::Work`): events, written with the change that
//! caused them (a message's by the store's append script, in the same step), which the worker
//! fans out; and the deliveries it fans them out into.
//!
//! An entry is read with `XREADGROUP … >` by the lease holder, stays in the group's pending
//! list while it is worked, and leaves with `XACK` + `XDEL` once settled. A node that takes the
//! lease over `XAUTOCLAIM`s everything still pending — on the dead holder, or on its own name
//! from before a restart — so a SIGKILL loses no delivery that reached the outbox.

use super::model::{Claimed, Delivery, OutboxEntry, Webhook, Work};
use super::store::WebhookStore;
use crate::error::{Error, Result};
use crate::redis::{RedisClient, StreamQueue};
use crate::wire::Event;
use async_trait::async_trait;
use redis::{Script, cmd};
use std::time::Duration;
use uuid::Uuid;

/// Upper bound on entries taken over in one `reclaim`.
const MAX_RECLAIM: usize = 1_000_000;

/// Takes the lease if free, renews it if ours; 1 when held afterwards.
const LEASE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

pub struct RedisWebhookStore {
    redis: RedisClient,
    prefix: String,
    delivery_ttl_secs: u64,
    outbox: StreamQueue,
    lease: Script,
}

impl std::fmt::Debug for RedisWebhookStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWebhookStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal_from("encode", e))
}

fn decode<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::internal_from("corrupt webhook record in redis", e))
}

impl RedisWebhookStore {
    /// Delivery records live `retry_horizon_secs` plus a week after their last change.
    pub fn new(redis: RedisClient, prefix: &str, retry_horizon_secs: u64) -> RedisWebhookStore {
        RedisWebhookStore {
            prefix: prefix.to_string(),
            delivery_ttl_secs: retry_horizon_secs.saturating_add(7 * 86_400),
            outbox: StreamQueue::new(redis.clone(), crate::redis::Keys::new(prefix).webhook_outbox()),
            lease: Script::new(LEASE),
            redis,
        }
    }

    fn shared(&self, part: &str) -> String {
        format!("{}:webhooks:{{webhooks}}:{part}", self.prefix)
    }

    fn delivery_ids(&self, webhook: Uuid) -> String {
        format!("{}:webhooks:{{{webhook}}}:deliveries", self.prefix)
    }

    fn delivery(&self, webhook: Uuid, id: Uuid) -> String {
        format!("{}:webhooks:{{{webhook}}}:d:{}", self.prefix, id.simple())
    }

    /// Outbox entries as claimed work; undecodable ones are dropped from the outbox.
    async fn claimed(&self, entries: Vec<(String, String)>) -> Vec<Claimed> {
        let mut out = Vec::with_capacity(entries.len());
        for (id, json) in entries {
            match decode::<Work>(&json) {
                Ok(work) => out.push(Claimed { token: id, work }),
                Err(_) => {
                    tracing::warn!(%id, "undecodable webhook outbox entry dropped");
                    let _ = self.ack(&id).await;
                }
            }
        }
        out
    }
}

#[async_trait]
impl WebhookStore for RedisWebhookStore {
    async fn put_webhook(&self, w: &Webhook) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("HSET").arg(self.shared("hooks")).arg(w.id.to_string()).arg(encode(w)?).ignore();
        p.cmd("INCR").arg(self.shared("version")).ignore();
        self.redis.pipe::<()>(&p).await
    }

    async fn get_webhook(&self, id: Uuid) -> Result<Option<Webhook>> {
        let doc: Option<String> = self.redis.query(cmd("HGET").arg(self.shared("hooks")).arg(id.to_string())).await?;
        doc.map(|d| decode(&d)).transpose()
    }

    async fn delete_webhook(&self, w: &Webhook) -> Result<bool> {
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("HDEL").arg(self.shared("hooks")).arg(w.id.to_string());
        p.cmd("INCR").arg(self.shared("version")).ignore();
        let (removed,): (u64,) = self.redis.pipe(&p).await?;
        let ids: Vec<String> = self.redis.query(cmd("ZRANGE").arg(self.delivery_ids(w.id)).arg(0).arg(-1)).await?;
        let mut keys: Vec<String> =
            ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).map(|id| self.delivery(w.id, id)).collect();
        keys.push(self.delivery_ids(w.id));
        for chunk in keys.chunks(500) {
            self.redis.query::<()>(cmd("DEL").arg(chunk)).await?;
        }
        Ok(removed > 0)
    }

    async fn list_webhooks(&self, tenant: Option<Uuid>) -> Result<Vec<Webhook>> {
        let docs: Vec<String> = self.redis.query(cmd("HVALS").arg(self.shared("hooks"))).await?;
        let mut v = Vec::with_capacity(docs.len());
        for d in docs {
            let w: Webhook = decode(&d)?;
            if tenant.is_none_or(|t| t == w.tenant_id) {
                v.push(w);
            }
        }
        v.sort_by_key(|w| w.id);
        Ok(v)
    }

    async fn version(&self) -> Result<u64> {
        let v: Option<u64> = self.redis.query(cmd("GET").arg(self.shared("version"))).await?;
        Ok(v.unwrap_or(0))
    }

    async fn put_delivery(&self, d: &Delivery, keep: usize) -> Result<()> {
        let ids = self.delivery_ids(d.webhook_id);
        let mut p = redis::pipe();
        p.cmd("SET")
            .arg(self.delivery(d.webhook_id, d.id))
            .arg(encode(d)?)
            .arg("EX")
            .arg(self.delivery_ttl_secs)
            .ignore();
        p.cmd("ZADD").arg(&ids).arg(0).arg(d.id.simple().to_string()).ignore();
        let keep = i64::try_from(keep.max(1)).unwrap_or(i64::MAX - 1);
        p.cmd("ZREMRANGEBYRANK").arg(&ids).arg(0).arg(-(keep + 1)).ignore();
        p.cmd("EXPIRE").arg(&ids).arg(self.delivery_ttl_secs).ignore();
        self.redis.pipe::<()>(&p).await
    }

    async fn get_delivery(&self, webhook: Uuid, id: Uuid) -> Result<Option<Delivery>> {
        let doc: Option<String> = self.redis.query(cmd("GET").arg(self.delivery(webhook, id))).await?;
        doc.map(|d| decode(&d)).transpose()
    }

    async fn list_deliveries(&self, webhook: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Delivery>> {
        let max = before.map_or_else(|| "+".to_string(), |b| format!("({}", b.simple()));
        let ids: Vec<String> = self
            .redis
            .query(
                cmd("ZREVRANGEBYLEX").arg(self.delivery_ids(webhook)).arg(max).arg("-").arg("LIMIT").arg(0).arg(limit),
            )
            .await?;
        let keys: Vec<String> =
            ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).map(|id| self.delivery(webhook, id)).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let docs: Vec<Option<String>> = self.redis.query(cmd("MGET").arg(&keys)).await?;
        docs.into_iter().flatten().map(|d| decode(&d)).collect()
    }

    async fn enqueue(&self, entry: &OutboxEntry) -> Result<()> {
        self.outbox.push(&encode(entry)?).await
    }

    async fn enqueue_events(&self, events: &[Event]) -> Result<()> {
        let payloads: Vec<String> =
            events.iter().map(|event| encode(&Work::Event { event: event.clone() })).collect::<Result<_>>()?;
        self.outbox.push_many(&payloads).await
    }

    async fn claim(&self, consumer: &str, max: usize) -> Result<Vec<Claimed>> {
        let entries = self.outbox.claim(consumer, max).await?;
        Ok(self.claimed(entries).await)
    }

    async fn reclaim(&self, consumer: &str) -> Result<Vec<Claimed>> {
        let entries = self.outbox.reclaim(consumer, 0, MAX_RECLAIM).await?;
        Ok(self.claimed(entries).await)
    }

    async fn ack(&self, token: &str) -> Result<()> {
        self.outbox.ack(token).await
    }

    async fn lease(&self, consumer: &str, ttl: Duration) -> Result<bool> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let held: i64 = self.redis.script(&self.lease, &[self.shared("lease")], &[&consumer, &ms]).await?;
        Ok(held == 1)
    }
}
