//! Media: files the hub holds itself — uploads (`POST /v1.0/media`) and inbound provider media
//! copied in — and the signed URLs they are fetched by.
//!
//! Owns the object bytes (a [`Storage`]: a directory, [`fs`], or an S3-compatible store,
//! [`s3`]), their metadata (a [`MediaRecords`] seam: memory or Redis), what is accepted
//! ([`sniff`]: type from the bytes, allow-list, size per kind), image handling ([`picture`]:
//! size, thumbnail, EXIF removed), the one URL signer ([`sign`]), storing ([`upload`]), the
//! signed download ([`serve`]), turning `medias: [{media_id}]` into stored medias
//! ([`attach`]) and deleting objects with their conversation ([`attach::forget`]). It does not
//! own messages, channels or who may upload: the post path calls [`attach::resolve`], the
//! upload door is `api::media`, channels read the signed URL a message carries and copy
//! provider media in through [`upload::store`] (`channels::inbound_media`).
//!
//! Why: a URL the sender hosts cannot carry an agent's screenshot, provider links expire or
//! need the provider's credentials, and a hub that serves user files must decide itself what
//! is served inline (images, audio, video) and what only as a download (everything else).

pub mod attach;
pub mod fs;
pub mod picture;
pub mod records;
pub mod records_redis;
pub mod s3;
pub mod serve;
pub mod sign;
pub mod sniff;
pub mod upload;

use crate::config::{Config, MediaBackend};
use crate::error::Result;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

pub use records::MediaRecords;

/// A stream of object bytes; an `Err` item aborts the write it feeds.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Where object bytes live. Keys are `<tenant>/<media id>` (and `….thumb`).
#[async_trait]
pub trait Storage: Send + Sync {
    /// Writes `body` under `key` as it arrives (never collected whole); returns its length.
    /// A failed or aborted write leaves no object behind.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64>;
    /// The object's bytes, or those of `range` (start inclusive, end exclusive).
    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream>;
    /// Removes the object; removing a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// What the hub knows about one stored media.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MediaRecord {
    pub id: Uuid,
    pub tenant: Uuid,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A JPEG thumbnail is stored under `<key>.thumb`.
    #[serde(default)]
    pub thumbnail: bool,
    /// The conversation it was uploaded for or first sent in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl MediaRecord {
    pub fn key(&self) -> String {
        object_key(self.tenant, self.id)
    }
    pub fn thumb_key(&self) -> String {
        format!("{}.thumb", self.key())
    }
}

pub fn object_key(tenant: Uuid, id: Uuid) -> String {
    format!("{tenant}/{id}")
}

/// The node's media service: storage, records and the URL signer.
#[derive(Clone)]
pub struct MediaStore {
    pub storage: Arc<dyn Storage>,
    pub records: Arc<dyn MediaRecords>,
    pub signer: sign::Signer,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStore").finish_non_exhaustive()
    }
}

impl MediaStore {
    /// The configured storage backend, records on Redis when `redis` is given (else memory).
    pub fn build(config: &Config, key: &[u8], redis: Option<crate::redis::RedisClient>) -> anyhow::Result<MediaStore> {
        let storage: Arc<dyn Storage> = match config.media.backend {
            MediaBackend::Fs => Arc::new(fs::FsStorage::new(&config.media.dir)?),
            MediaBackend::S3 => Arc::new(s3::S3Storage::new(&config.media.s3)?),
        };
        let records: Arc<dyn MediaRecords> = match redis {
            Some(r) => {
                Arc::new(records_redis::RedisMediaRecords::new(r, &crate::redis::Keys::new(&config.redis.key_prefix)))
            }
            None => Arc::new(records::MemoryMediaRecords::default()),
        };
        Ok(MediaStore { storage, records, signer: sign::Signer::new(key, config.media.url_ttl_secs) })
    }

    /// Deletes a media's objects and its record (what erasure, retention and conversation
    /// deletion call); a missing one is fine.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        let Some(r) = self.records.get(id).await? else { return Ok(()) };
        self.storage.delete(&r.key()).await?;
        if r.thumbnail {
            self.storage.delete(&r.thumb_key()).await?;
        }
        self.records.delete(&r).await
    }
}
