//! The shared roster on Redis: per tenant a ZSET of `<node id> <identity>` entries scored by
//! their expiry (Unix ms), which a heartbeat pushes forward every third of
//! `assignment.presence_ttl_secs`; an agent whose last connection on a node closed leaves at
//! once, one whose node died leaves when its entry expires. The pick is one script, so racing
//! nodes never pick the same slot.

use super::{Local, Roster};
use crate::app::AppState;
use crate::config::Config;
use crate::error::Result;
use crate::redis::{Keys, RedisClient};
use async_trait::async_trait;
use redis::{Script, cmd};
use std::sync::Arc;
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

/// Cheap to clone: the heartbeat task runs on a clone.
#[derive(Clone)]
pub struct RedisRoster {
    client: RedisClient,
    keys: Keys,
    pick: Script,
    node: String,
    ttl: Duration,
    heartbeat_started: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisRoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRoster").field("node", &self.node).finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RedisRoster {
    pub fn new(client: RedisClient, config: &Config, node_id: &str) -> RedisRoster {
        RedisRoster {
            client,
            keys: Keys::new(&config.redis.key_prefix),
            pick: Script::new(PICK),
            node: node_id.to_string(),
            ttl: Duration::from_secs(config.assignment.presence_ttl_secs.max(3)),
            heartbeat_started: Arc::default(),
        }
    }

    fn member(&self, identity: &str) -> String {
        format!("{} {identity}", self.node)
    }

    fn expiry(&self) -> i64 {
        now_ms() + self.ttl.as_millis() as i64
    }

    /// Re-announces this node's connected agents until shutdown.
    async fn heartbeat(&self, state: AppState) {
        let mut every = tokio::time::interval(self.ttl / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let expiry = self.expiry();
            // One command per key: on a cluster each tenant's ZSET may live on another node.
            for (tenant, identity) in state.agents.local_agents() {
                let one =
                    cmd("ZADD").arg(self.keys.agents_online(tenant)).arg(expiry).arg(self.member(&identity)).clone();
                if let Err(e) = self.client.query::<()>(&one).await {
                    tracing::warn!(error = %e.chain(), "agent presence heartbeat failed");
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl Roster for RedisRoster {
    async fn joined(&self, state: &AppState, tenant: Uuid, identity: &str) {
        if !self.heartbeat_started.swap(true, Ordering::AcqRel) {
            let (me, state2) = (self.clone(), state.clone());
            state.tasks.spawn(async move { me.heartbeat(state2).await });
        }
        let add =
            cmd("ZADD").arg(self.keys.agents_online(tenant)).arg(self.expiry()).arg(self.member(identity)).clone();
        if let Err(e) = self.client.query::<()>(&add).await {
            tracing::warn!(error = %e.chain(), "agent presence not announced; the heartbeat retries");
        }
    }

    async fn left(&self, tenant: Uuid, identity: &str) {
        let rem = cmd("ZREM").arg(self.keys.agents_online(tenant)).arg(self.member(identity)).clone();
        if let Err(e) = self.client.query::<()>(&rem).await {
            tracing::warn!(error = %e.chain(), "agent absence not announced; its entry expires by itself");
        }
    }

    async fn available(&self, tenant: Uuid, _local: &Local) -> Result<Vec<String>> {
        let q = cmd("ZRANGEBYSCORE").arg(self.keys.agents_online(tenant)).arg(now_ms()).arg("+inf").clone();
        let members: Vec<String> = self.client.query(&q).await?;
        Ok(members.iter().filter_map(|m| m.split_once(' ').map(|(_, id)| id.to_string())).collect())
    }

    async fn pick(&self, tenant: Uuid, _local: &Local) -> Result<Option<String>> {
        let keys = [self.keys.agents_online(tenant), self.keys.agents_last_pick(tenant)];
        self.client.script(&self.pick, &keys, &[&now_ms()]).await
    }
}
