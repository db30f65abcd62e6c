//! Deadlines in Redis: one sorted set `P:timers` (member `tenant:conversation`, score the
//! deadline in ms), so they survive restarts and any node may work them. A claim is one script
//! (due members moved to the lease score in the same step), so two nodes never claim the same
//! deadline; a node that dies holding one leaves it to be claimed again when its lease ends.

use super::{Deadlines, Due, member, parse_member};
use crate::error::Result;
use crate::redis::{Keys, RedisClient};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{Script, cmd};
use uuid::Uuid;

/// KEYS: timers. ARGV: now ms, lease ms, limit. Returns the claimed members.
const CLAIM: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
";

/// KEYS: timers. ARGV: member, lease ms. Removes the member if it is still at its lease.
const RELEASE: &str = r"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
";

#[derive(Debug)]
pub struct RedisDeadlines {
    redis: RedisClient,
    key: String,
    claim: Script,
    release: Script,
}

impl RedisDeadlines {
    pub fn new(redis: RedisClient, keys: &Keys) -> RedisDeadlines {
        RedisDeadlines { redis, key: keys.timers(), claim: Script::new(CLAIM), release: Script::new(RELEASE) }
    }
}

#[async_trait]
impl Deadlines for RedisDeadlines {
    async fn schedule(&self, tenant: Uuid, conversation: Uuid, at: DateTime<Utc>) -> Result<()> {
        let c = cmd("ZADD").arg(&self.key).arg(at.timestamp_millis()).arg(member(tenant, conversation)).clone();
        self.redis.query::<()>(&c).await
    }

    async fn claim(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: usize) -> Result<Vec<Due>> {
        let (n, l) = (now.timestamp_millis(), lease_until.timestamp_millis());
        let due: Vec<String> =
            self.redis.script(&self.claim, std::slice::from_ref(&self.key), &[&n, &l, &limit]).await?;
        Ok(due.iter().filter_map(|m| parse_member(m)).collect())
    }

    async fn release(&self, due: Due, lease_until: DateTime<Utc>) -> Result<()> {
        let (m, l) = (member(due.tenant, due.conversation), lease_until.timestamp_millis().to_string());
        self.redis.script::<i64>(&self.release, std::slice::from_ref(&self.key), &[&m, &l]).await.map(|_| ())
    }
}
