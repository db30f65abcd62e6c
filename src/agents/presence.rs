//! Agent availability and the round-robin pick.
//!
//! An agent is *available* while it holds at least one open WebSocket (with an agent token).
//! Each node counts its own agent connections. On the memory backend that count is the whole
//! truth. On Redis every node also keeps an entry `<node id> <identity>` per connected agent in
//! the tenant's `agents` ZSET, scored by an expiry that a heartbeat pushes forward every third
//! of `assignment.presence_ttl_secs`: every node sees the same list, an agent whose last
//! connection closed leaves it at once, and one whose node died leaves it when its entry
//! expires.
//!
//! The pick is "the next available agent after the one picked last, in identity order", which
//! stays fair when agents come and go. On Redis it is one script over the ZSET and the tenant's
//! last pick, so two nodes opening conversations at the same moment never pick the same slot.

use crate::app::AppState;
use crate::config::Config;
use crate::error::Result;
use crate::store::redis::{Keys, RedisClient};
use dashmap::DashMap;
use redis::{Script, cmd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// KEYS: agents ZSET, last pick. ARGV: now (Unix ms). Drops expired entries, then returns the
/// next available identity after the last pick (wrapping), or nil when nobody is available.
const PICK: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local seen, ids = {}, {}
for _, e in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local id = string.match(e, '^%S+ (.*)$')
  if id and not seen[id] then
    seen[id] = true
    ids[#ids + 1] = id
  end
end
if #ids == 0 then return false end
table.sort(ids)
local last = redis.call('GET', KEYS[2])
local pick = ids[1]
if last then
  for _, id in ipairs(ids) do
    if id > last then
      pick = id
      break
    end
  end
end
redis.call('SET', KEYS[2], pick)
return pick
";

/// The Redis side, on that backend only.
struct Shared {
    client: RedisClient,
    keys: Keys,
    pick: Script,
    heartbeat_started: AtomicBool,
}

/// See the module docs. One per node, in `AppState`.
pub struct Presence {
    node: String,
    ttl: Duration,
    /// (tenant, identity) → this node's open agent connections.
    local: DashMap<(Uuid, String), usize>,
    /// Memory backend: the identity picked last, per tenant.
    last_pick: DashMap<Uuid, String>,
    shared: Option<Shared>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").field("local", &self.local.len()).finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Presence {
    /// `redis`: the backend's client when `store.backend = "redis"`.
    pub fn new(config: &Config, node_id: &str, redis: Option<RedisClient>) -> Presence {
        Presence {
            node: node_id.to_string(),
            ttl: Duration::from_secs(config.assignment.presence_ttl_secs.max(3)),
            local: DashMap::new(),
            last_pick: DashMap::new(),
            shared: redis.map(|client| Shared {
                client,
                keys: Keys::new(&config.redis.key_prefix),
                pick: Script::new(PICK),
                heartbeat_started: AtomicBool::new(false),
            }),
        }
    }

    fn member(&self, identity: &str) -> String {
        format!("{} {identity}", self.node)
    }

    /// An agent connection opened on this node.
    pub async fn connected(&self, state: &AppState, tenant: Uuid, identity: &str) {
        let first = {
            let mut n = self.local.entry((tenant, identity.to_string())).or_insert(0);
            *n += 1;
            *n == 1
        };
        let Some(shared) = &self.shared else { return };
        if !shared.heartbeat_started.swap(true, Ordering::AcqRel) {
            state.tasks.spawn(heartbeat(state.clone()));
        }
        if first {
            let expiry = now_ms() + self.ttl.as_millis() as i64;
            let add = cmd("ZADD").arg(shared.keys.agents_online(tenant)).arg(expiry).arg(self.member(identity)).clone();
            if let Err(e) = shared.client.query::<()>(&add).await {
                tracing::warn!(error = %e, "agent presence not announced; the heartbeat retries");
            }
        }
    }

    /// An agent connection on this node closed.
    pub async fn disconnected(&self, tenant: Uuid, identity: &str) {
        let key = (tenant, identity.to_string());
        if let Some(mut n) = self.local.get_mut(&key) {
            *n = n.saturating_sub(1);
        }
        let gone = self.local.remove_if(&key, |_, n| *n == 0).is_some();
        if let (true, Some(shared)) = (gone, &self.shared) {
            let rem = cmd("ZREM").arg(shared.keys.agents_online(tenant)).arg(self.member(identity)).clone();
            if let Err(e) = shared.client.query::<()>(&rem).await {
                tracing::warn!(error = %e, "agent absence not announced; its entry expires by itself");
            }
        }
    }

    /// Identities of the tenant's available agents, sorted.
    pub async fn available(&self, tenant: Uuid) -> Result<Vec<String>> {
        let mut ids: Vec<String> = match &self.shared {
            None => self.local.iter().filter(|e| e.key().0 == tenant).map(|e| e.key().1.clone()).collect(),
            Some(shared) => {
                let q = cmd("ZRANGEBYSCORE").arg(shared.keys.agents_online(tenant)).arg(now_ms()).arg("+inf").clone();
                let members: Vec<String> = shared.client.query(&q).await?;
                members.iter().filter_map(|m| m.split_once(' ').map(|(_, id)| id.to_string())).collect()
            }
        };
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The next available agent for `tenant` (round robin), `None` when nobody is available.
    pub async fn pick(&self, tenant: Uuid) -> Result<Option<String>> {
        if let Some(shared) = &self.shared {
            let keys = [shared.keys.agents_online(tenant), shared.keys.agents_last_pick(tenant)];
            return shared.client.script(&shared.pick, &keys, &[&now_ms()]).await;
        }
        let ids = self.available(tenant).await?;
        let mut last = self.last_pick.entry(tenant).or_default();
        let pick = ids.iter().find(|id| **id > *last).or(ids.first()).cloned();
        if let Some(p) = &pick {
            last.clone_from(p);
        }
        Ok(pick)
    }
}

/// Redis backend: re-announces this node's connected agents until shutdown.
async fn heartbeat(state: AppState) {
    let p = &state.agents;
    let Some(shared) = &p.shared else { return };
    let mut every = tokio::time::interval(p.ttl / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let entries: Vec<(Uuid, String)> = p.local.iter().map(|e| e.key().clone()).collect();
        let expiry = now_ms() + p.ttl.as_millis() as i64;
        // One command per key: on a cluster each tenant's ZSET may live on another node.
        for (tenant, identity) in &entries {
            let one = cmd("ZADD").arg(shared.keys.agents_online(*tenant)).arg(expiry).arg(p.member(identity)).clone();
            if let Err(e) = shared.client.query::<()>(&one).await {
                tracing::warn!(error = %e, "agent presence heartbeat failed");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_round_robin_follows_identity_order_and_wraps() {
        let p = Presence::new(&Config::defaults(), "n1", None);
        let t = Uuid::now_v7();
        for id in ["b", "a", "c"] {
            *p.local.entry((t, id.to_string())).or_insert(0) += 1;
        }
        let mut picks = Vec::new();
        for _ in 0..4 {
            picks.push(p.pick(t).await.unwrap().unwrap());
        }
        assert_eq!(picks, ["a", "b", "c", "a"]);
        p.disconnected(t, "b").await;
        assert_eq!(p.pick(t).await.unwrap().as_deref(), Some("c"));
        assert!(p.pick(Uuid::now_v7()).await.unwrap().is_none());
    }
}
