//! [`MediaRecords`] on Redis. Layout (`crate::redis::keys`, `docs/redis.md`):
//! `P:media:<id>` → the record's JSON (one key per media: a signed download names only the
//! id); `P:cmedia:{<conversation id>}` SET of the conversation's media ids, tagged with the
//! room so it sits in the room's slot; `P:mhash:{<tenant id>}` HASH sha256 → media id.
//! Every command touches one key, so all of it works on Redis Cluster.

use super::{MediaRecord, MediaRecords};
use crate::error::{Error, Result};
use crate::redis::{Keys, RedisClient};
use async_trait::async_trait;
use redis::cmd;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RedisMediaRecords {
    redis: RedisClient,
    keys: Keys,
}

impl RedisMediaRecords {
    pub fn new(redis: RedisClient, keys: &Keys) -> RedisMediaRecords {
        RedisMediaRecords { redis, keys: keys.clone() }
    }
}

#[async_trait]
impl MediaRecords for RedisMediaRecords {
    async fn put(&self, r: &MediaRecord) -> Result<()> {
        let json = serde_json::to_string(r).map_err(|e| Error::internal_from("media record", e))?;
        let _: () = self.redis.query(cmd("SET").arg(self.keys.media(r.id)).arg(json)).await?;
        let _: () = self
            .redis
            .query(cmd("HSET").arg(self.keys.media_hashes(r.tenant)).arg(&r.sha256).arg(r.id.to_string()))
            .await?;
        if let Some(c) = r.conversation_id {
            self.link(c, r.id).await?;
        }
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Option<MediaRecord>> {
        let v: Option<String> = self.redis.query(cmd("GET").arg(self.keys.media(id))).await?;
        v.map(|s| serde_json::from_str(&s).map_err(|e| Error::internal_from("media record", e))).transpose()
    }

    async fn delete(&self, r: &MediaRecord) -> Result<()> {
        let _: () = self.redis.query(cmd("DEL").arg(self.keys.media(r.id))).await?;
        let hashes = self.keys.media_hashes(r.tenant);
        let cur: Option<String> = self.redis.query(cmd("HGET").arg(&hashes).arg(&r.sha256)).await?;
        if cur.as_deref() == Some(r.id.to_string().as_str()) {
            let _: () = self.redis.query(cmd("HDEL").arg(&hashes).arg(&r.sha256)).await?;
        }
        if let Some(c) = r.conversation_id {
            let _: () =
                self.redis.query(cmd("SREM").arg(self.keys.conversation_media(c)).arg(r.id.to_string())).await?;
        }
        Ok(())
    }

    async fn link(&self, conversation: Uuid, id: Uuid) -> Result<()> {
        self.redis.query(cmd("SADD").arg(self.keys.conversation_media(conversation)).arg(id.to_string())).await
    }

    async fn of_conversation(&self, conversation: Uuid) -> Result<Vec<Uuid>> {
        let ids: Vec<String> =
            self.redis.query(cmd("SMEMBERS").arg(self.keys.conversation_media(conversation))).await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    async fn by_hash(&self, tenant: Uuid, sha256: &str) -> Result<Option<Uuid>> {
        let v: Option<String> = self.redis.query(cmd("HGET").arg(self.keys.media_hashes(tenant)).arg(sha256)).await?;
        Ok(v.and_then(|s| s.parse().ok()))
    }
}
