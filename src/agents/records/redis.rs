//! [`Records`] on Redis: namespace `ns` is the HASH `P:rec:<ns>`. Every operation touches that
//! one key (cluster-safe); the compare-and-set steps are short Lua scripts; a namespace's
//! deadline is its key's TTL (`PEXPIREAT`). Layout in
//! `docs/redis.md`.

use super::Records;
use crate::error::Result;
use crate::redis::RedisClient;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{Script, cmd};

const SWAP: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1
end
return 0
"#;

const REMOVE: &str = r#"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then redis.call('HDEL', KEYS[1], ARGV[1]) end
return v
"#;

const REMOVE_IF: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1]) return 1
end
return 0
"#;

const RAISE: &str = r#"
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
local n = tonumber(ARGV[2])
if n > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return ARGV[2] end
return tostring(cur)
"#;

const PUT_UNTIL: &str = r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
"#;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct RedisRecords {
    redis: RedisClient,
    prefix: String,
    swap: Script,
    remove: Script,
    remove_if: Script,
    raise: Script,
    put_until: Script,
}

impl RedisRecords {
    pub fn new(redis: RedisClient, prefix: &str) -> RedisRecords {
        RedisRecords {
            redis,
            prefix: prefix.to_string(),
            swap: Script::new(SWAP),
            remove: Script::new(REMOVE),
            remove_if: Script::new(REMOVE_IF),
            raise: Script::new(RAISE),
            put_until: Script::new(PUT_UNTIL),
        }
    }

    fn key(&self, ns: &str) -> String {
        format!("{}:rec:{ns}", self.prefix)
    }
}

#[async_trait]
impl Records for RedisRecords {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<String>> {
        self.redis.query(cmd("HGET").arg(self.key(ns)).arg(key)).await
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.redis.query(cmd("HMGET").arg(self.key(ns)).arg(keys)).await
    }

    async fn all(&self, ns: &str) -> Result<Vec<(String, String)>> {
        let all: std::collections::HashMap<String, String> = self.redis.query(cmd("HGETALL").arg(self.key(ns))).await?;
        Ok(all.into_iter().collect())
    }

    async fn put(&self, ns: &str, key: &str, value: &str) -> Result<()> {
        self.redis.query(cmd("HSET").arg(self.key(ns)).arg(key).arg(value)).await
    }

    async fn insert(&self, ns: &str, key: &str, value: &str) -> Result<bool> {
        self.redis.query(cmd("HSETNX").arg(self.key(ns)).arg(key).arg(value)).await
    }

    async fn swap(&self, ns: &str, key: &str, old: &str, new: &str) -> Result<bool> {
        let n: i64 = self.redis.script(&self.swap, &[self.key(ns)], &[&key, &old, &new]).await?;
        Ok(n == 1)
    }

    async fn remove(&self, ns: &str, key: &str) -> Result<Option<String>> {
        self.redis.script(&self.remove, &[self.key(ns)], &[&key]).await
    }

    async fn remove_if(&self, ns: &str, key: &str, value: &str) -> Result<bool> {
        let n: i64 = self.redis.script(&self.remove_if, &[self.key(ns)], &[&key, &value]).await?;
        Ok(n == 1)
    }

    async fn raise(&self, ns: &str, key: &str, n: u64) -> Result<u64> {
        let v: String = self.redis.script(&self.raise, &[self.key(ns)], &[&key, &n.to_string()]).await?;
        Ok(v.parse().unwrap_or(n))
    }

    async fn clear(&self, ns: &str) -> Result<()> {
        self.redis.query(cmd("DEL").arg(self.key(ns))).await
    }

    async fn expire_at(&self, ns: &str, at: DateTime<Utc>) -> Result<()> {
        self.redis.query(cmd("PEXPIREAT").arg(self.key(ns)).arg(at.timestamp_millis().max(1))).await
    }

    async fn put_until(&self, ns: &str, key: &str, value: &str, at: DateTime<Utc>) -> Result<()> {
        let at = at.timestamp_millis().max(1).to_string();
        let _: i64 = self.redis.script(&self.put_until, &[self.key(ns)], &[&key, &value, &at.as_str()]).await?;
        Ok(())
    }
}
