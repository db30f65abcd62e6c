//! Persistence of webhooks, delivery records and the delivery outbox, behind one trait.
//!
//! Two implementations: `MemoryWebhookStore` here (everything in this process, lost with it,
//! like the rest of the memory backend) and `redis_store::RedisWebhookStore` (a Redis Stream
//! with a consumer group as the durable outbox). The outbox contract is a work queue with
//! explicit acknowledgement: `claim` hands out entries nobody has seen, an entry stays pending
//! until `ack`, and `reclaim` takes over whatever is still pending on consumers that died.

use super::model::{Claimed, Delivery, OutboxEntry, Webhook, Work};
use crate::error::{Error, Result};
use crate::wire::Event;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Creates or replaces a webhook; bumps `version`.
    async fn put_webhook(&self, w: &Webhook) -> Result<()>;
    async fn get_webhook(&self, id: Uuid) -> Result<Option<Webhook>>;
    /// Deletes a webhook and its delivery records; bumps `version`. False if it did not exist.
    async fn delete_webhook(&self, w: &Webhook) -> Result<bool>;
    /// The tenant's webhooks, or every tenant's with `None` (oldest first).
    async fn list_webhooks(&self, tenant: Option<Uuid>) -> Result<Vec<Webhook>>;
    /// Changes whenever any webhook changes (other nodes refresh their index on a change).
    async fn version(&self) -> Result<u64>;

    /// Creates or replaces a delivery record; keeps the newest `keep` per webhook.
    async fn put_delivery(&self, d: &Delivery, keep: usize) -> Result<()>;
    async fn get_delivery(&self, webhook: Uuid, id: Uuid) -> Result<Option<Delivery>>;
    /// Newest first, strictly older than `before` (a delivery id) when given.
    async fn list_deliveries(&self, webhook: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Delivery>>;

    /// Appends a delivery to the outbox.
    async fn enqueue(&self, entry: &OutboxEntry) -> Result<()>;
    /// Appends events to the outbox, in order, for the worker to fan out (one write).
    async fn enqueue_events(&self, events: &[Event]) -> Result<()>;
    /// Up to `max` entries no consumer has been given yet, oldest first; never blocks.
    async fn claim(&self, consumer: &str, max: usize) -> Result<Vec<Claimed>>;
    /// Every entry still pending (unacknowledged) on any consumer, oldest first, now owned by
    /// `consumer`. Called by a node that just took over the outbox.
    async fn reclaim(&self, consumer: &str) -> Result<Vec<Claimed>>;
    /// The entry is done (delivered, failed, dead or moot) and leaves the outbox.
    async fn ack(&self, token: &str) -> Result<()>;
    /// Takes or renews the right to work the outbox for `ttl`; false while another consumer
    /// holds it. Exactly one live consumer works the outbox, which keeps per-lane order.
    async fn lease(&self, consumer: &str, ttl: Duration) -> Result<bool>;
}

/// In-process store: one node, no durability.
#[derive(Debug, Default)]
pub struct MemoryWebhookStore {
    inner: Mutex<Mem>,
    version: AtomicU64,
}

#[derive(Debug, Default)]
struct Mem {
    hooks: HashMap<Uuid, Webhook>,
    /// Per webhook: delivery ids, oldest first.
    order: HashMap<Uuid, VecDeque<Uuid>>,
    deliveries: HashMap<Uuid, Delivery>,
    queue: VecDeque<(u64, Work)>,
    pending: HashMap<u64, Work>,
    next_token: u64,
}

impl Mem {
    fn push(&mut self, work: Work) {
        self.next_token += 1;
        let token = self.next_token;
        self.queue.push_back((token, work));
    }
}

impl crate::store::EventOutbox for MemoryWebhookStore {
    /// Queues an outbox entry given as `model::Work` JSON (the memory store's append writes a
    /// message's event this way, inside its room lock). Synchronous: nothing to wait for.
    fn push_work(&self, json: &str) -> Result<()> {
        let work: Work = serde_json::from_str(json).map_err(|e| Error::internal_from("outbox entry", e))?;
        self.lock().push(work);
        Ok(())
    }
}

impl MemoryWebhookStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Mem> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that
        // matters more than losing the process; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl WebhookStore for MemoryWebhookStore {
    async fn put_webhook(&self, w: &Webhook) -> Result<()> {
        self.lock().hooks.insert(w.id, w.clone());
        self.version.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn get_webhook(&self, id: Uuid) -> Result<Option<Webhook>> {
        Ok(self.lock().hooks.get(&id).cloned())
    }

    async fn delete_webhook(&self, w: &Webhook) -> Result<bool> {
        let mut m = self.lock();
        let existed = m.hooks.remove(&w.id).is_some();
        for id in m.order.remove(&w.id).unwrap_or_default() {
            m.deliveries.remove(&id);
        }
        drop(m);
        self.version.fetch_add(1, Ordering::Relaxed);
        Ok(existed)
    }

    async fn list_webhooks(&self, tenant: Option<Uuid>) -> Result<Vec<Webhook>> {
        let mut v: Vec<Webhook> =
            self.lock().hooks.values().filter(|w| tenant.is_none_or(|t| w.tenant_id == t)).cloned().collect();
        v.sort_by_key(|w| w.id);
        Ok(v)
    }

    async fn version(&self) -> Result<u64> {
        Ok(self.version.load(Ordering::Relaxed))
    }

    async fn put_delivery(&self, d: &Delivery, keep: usize) -> Result<()> {
        let mut m = self.lock();
        if m.deliveries.insert(d.id, d.clone()).is_none() {
            let order = m.order.entry(d.webhook_id).or_default();
            order.push_back(d.id);
            let mut evicted = Vec::new();
            while order.len() > keep.max(1) {
                evicted.extend(order.pop_front());
            }
            for id in evicted {
                m.deliveries.remove(&id);
            }
        }
        Ok(())
    }

    async fn get_delivery(&self, webhook: Uuid, id: Uuid) -> Result<Option<Delivery>> {
        Ok(self.lock().deliveries.get(&id).filter(|d| d.webhook_id == webhook).cloned())
    }

    async fn list_deliveries(&self, webhook: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Delivery>> {
        let m = self.lock();
        let Some(order) = m.order.get(&webhook) else { return Ok(Vec::new()) };
        Ok(order
            .iter()
            .rev()
            .filter(|id| before.is_none_or(|b| **id < b))
            .filter_map(|id| m.deliveries.get(id).cloned())
            .take(limit)
            .collect())
    }

    async fn enqueue(&self, entry: &OutboxEntry) -> Result<()> {
        self.lock().push(Work::Delivery(entry.clone()));
        Ok(())
    }

    async fn enqueue_events(&self, events: &[Event]) -> Result<()> {
        let mut m = self.lock();
        for e in events {
            m.push(Work::Event { event: e.clone() });
        }
        Ok(())
    }

    async fn claim(&self, _consumer: &str, max: usize) -> Result<Vec<Claimed>> {
        let mut m = self.lock();
        let n = max.min(m.queue.len());
        let batch: Vec<(u64, Work)> = m.queue.drain(..n).collect();
        let mut out = Vec::with_capacity(batch.len());
        for (token, work) in batch {
            m.pending.insert(token, work.clone());
            out.push(Claimed { token: token.to_string(), work });
        }
        Ok(out)
    }

    async fn reclaim(&self, _consumer: &str) -> Result<Vec<Claimed>> {
        let m = self.lock();
        let mut v: Vec<(u64, Work)> = m.pending.iter().map(|(t, w)| (*t, w.clone())).collect();
        v.sort_by_key(|(t, _)| *t);
        Ok(v.into_iter().map(|(t, work)| Claimed { token: t.to_string(), work }).collect())
    }

    async fn ack(&self, token: &str) -> Result<()> {
        if let Ok(t) = token.parse::<u64>() {
            self.lock().pending.remove(&t);
        }
        Ok(())
    }

    async fn lease(&self, _consumer: &str, _ttl: Duration) -> Result<bool> {
        Ok(true)
    }
}
