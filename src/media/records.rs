//! The media metadata seam: one [`MediaRecord`] per stored media, the media of each
//! conversation (so deleting the conversation deletes its objects) and, per tenant, the media
//! by content hash (so a provider retrying an inbound email does not store its attachments
//! twice). Memory here, Redis in `records_redis`.
//!
//! Owns metadata only; the bytes are the [`super::Storage`]'s.

use super::MediaRecord;
use crate::error::Result;
use async_trait::async_trait;
use dashmap::DashMap;
use uuid::Uuid;

#[async_trait]
pub trait MediaRecords: Send + Sync {
    /// Stores (or replaces) `r`, indexing it by hash and, if it has one, by conversation.
    async fn put(&self, r: &MediaRecord) -> Result<()>;
    async fn get(&self, id: Uuid) -> Result<Option<MediaRecord>>;
    /// Forgets `r` and its index entries.
    async fn delete(&self, r: &MediaRecord) -> Result<()>;
    /// Notes that `id` is used in `conversation` (sent in one of its messages).
    async fn link(&self, conversation: Uuid, id: Uuid) -> Result<()>;
    /// Every media linked to `conversation`.
    async fn of_conversation(&self, conversation: Uuid) -> Result<Vec<Uuid>>;
    /// The tenant's media with this content hash, if any.
    async fn by_hash(&self, tenant: Uuid, sha256: &str) -> Result<Option<Uuid>>;
}

#[derive(Debug, Default)]
pub struct MemoryMediaRecords {
    records: DashMap<Uuid, MediaRecord>,
    conversations: DashMap<Uuid, Vec<Uuid>>,
    hashes: DashMap<(Uuid, String), Uuid>,
}

#[async_trait]
impl MediaRecords for MemoryMediaRecords {
    async fn put(&self, r: &MediaRecord) -> Result<()> {
        self.records.insert(r.id, r.clone());
        self.hashes.insert((r.tenant, r.sha256.clone()), r.id);
        if let Some(c) = r.conversation_id {
            self.link(c, r.id).await?;
        }
        Ok(())
    }

    async fn get(&self, id: Uuid) -> Result<Option<MediaRecord>> {
        Ok(self.records.get(&id).map(|r| r.clone()))
    }

    async fn delete(&self, r: &MediaRecord) -> Result<()> {
        self.records.remove(&r.id);
        self.hashes.remove_if(&(r.tenant, r.sha256.clone()), |_, v| *v == r.id);
        if let Some(c) = r.conversation_id
            && let Some(mut list) = self.conversations.get_mut(&c)
        {
            list.retain(|x| *x != r.id);
        }
        Ok(())
    }

    async fn link(&self, conversation: Uuid, id: Uuid) -> Result<()> {
        let mut list = self.conversations.entry(conversation).or_default();
        if !list.contains(&id) {
            list.push(id);
        }
        Ok(())
    }

    async fn of_conversation(&self, conversation: Uuid) -> Result<Vec<Uuid>> {
        Ok(self.conversations.get(&conversation).map(|l| l.clone()).unwrap_or_default())
    }

    async fn by_hash(&self, tenant: Uuid, sha256: &str) -> Result<Option<Uuid>> {
        Ok(self.hashes.get(&(tenant, sha256.to_string())).map(|v| *v))
    }
}
