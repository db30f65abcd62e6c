//! Storing an upload (`POST /v1.0/media`, whose HTTP door is `api::media`) or a re-hosted
//! provider media: bytes streamed into storage as they arrive.
//!
//! The type is sniffed from the first bytes ([`super::sniff`]) and the size limit
//! of its kind applies while the bytes stream in (413 as soon as it is passed; nothing is
//! kept). The body is hashed (SHA-256) on its way to storage and never held whole — except a
//! raster image, which is bounded by `media.max_image_bytes` and has to be decoded anyway
//! (size, thumbnail, metadata removed: [`super::picture`]). Owns the write and the answer's
//! shape; not who may upload (the door checks that).

use super::sign::Variant;
use super::sniff::{HEAD_BYTES, Sniffed, sniff};
use super::{ByteStream, MediaRecord, object_key};
use crate::app::AppState;
use crate::error::{Error, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// An uploaded media; send it in a message as `medias: [{"media_id": id}]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    pub id: Uuid,
    /// Signed download URL (expires after `media.url_ttl_secs`).
    pub url: String,
    /// As sniffed from the bytes, not as the sender declared it.
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

/// The multipart form (documentation only: the handler reads the stream itself).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// Required for an end-user (scoped) token, before `file`.
    conversation_id: Option<Uuid>,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

impl Uploaded {
    pub fn of(state: &AppState, r: &MediaRecord) -> Uploaded {
        let base = state.public_base();
        let signer = &state.media.signer;
        Uploaded {
            id: r.id,
            url: signer.url(&base, r.id, Variant::Original),
            content_type: r.content_type.clone(),
            size: r.size,
            sha256: r.sha256.clone(),
            name: r.name.clone(),
            width: r.width,
            height: r.height,
            thumbnail_url: r.thumbnail.then(|| signer.url(&base, r.id, Variant::Thumbnail)),
        }
    }
}

/// A file name fit to show and to put in `Content-Disposition`: no path, no control or quote
/// characters, at most 200 bytes.
pub fn clean_name(n: &str) -> String {
    let base = n.rsplit(['/', '\\']).next().unwrap_or("");
    let mut s: String = base.chars().filter(|c| !c.is_control() && !matches!(c, '"' | ';')).collect();
    while s.len() > 200 {
        s.pop();
    }
    s.trim().to_string()
}

fn too_large(s: &Sniffed, limit: u64) -> Error {
    Error::PayloadTooLarge(format!(
        "{} are limited to {limit} bytes ({:.1} MiB); this file is larger",
        s.kind_name(),
        limit as f64 / 1_048_576.0
    ))
}

/// Streams `body` into storage as a new media of `tenant`; see the module docs.
pub async fn store<S, E>(
    state: &AppState,
    tenant: Uuid,
    conversation: Option<Uuid>,
    name: Option<String>,
    body: S,
) -> Result<MediaRecord>
where
    S: futures_util::Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let mut body = body;
    let mut head = Vec::new();
    let mut first: Vec<Bytes> = Vec::new();
    while head.len() < HEAD_BYTES {
        match body.next().await {
            Some(Ok(chunk)) => {
                head.extend_from_slice(&chunk[..chunk.len().min(HEAD_BYTES - head.len())]);
                first.push(chunk);
            }
            Some(Err(e)) => return Err(Error::bad_request(format!("upload interrupted: {e}"))),
            None => break,
        }
    }
    let sniffed = sniff(&head)?;
    let limit = sniffed.limit(&state.config.media);
    let id = Uuid::now_v7();
    let key = object_key(tenant, id);
    let mut record = MediaRecord {
        id,
        tenant,
        content_type: sniffed.content_type.clone(),
        size: 0,
        sha256: String::new(),
        name,
        width: None,
        height: None,
        thumbnail: false,
        conversation_id: conversation,
        created_at: crate::model::now(),
    };
    let rest = futures_util::stream::iter(first.into_iter().map(Ok)).chain(body);
    if sniffed.raster() {
        let mut all = Vec::new();
        let mut rest = Box::pin(rest);
        while let Some(chunk) = rest.next().await {
            let chunk = chunk.map_err(|e| Error::bad_request(format!("upload interrupted: {e}")))?;
            if (all.len() + chunk.len()) as u64 > limit {
                return Err(too_large(&sniffed, limit));
            }
            all.extend_from_slice(&chunk);
        }
        let ct = sniffed.content_type.clone();
        let p = tokio::task::spawn_blocking(move || super::picture::process(&ct, all))
            .await
            .map_err(|e| Error::internal(format!("image worker: {e}")))??;
        record.sha256 = hex(&Sha256::digest(&p.bytes));
        record.size = p.bytes.len() as u64;
        (record.width, record.height) = (Some(p.width), Some(p.height));
        let storage = &state.media.storage;
        storage.put(&key, once(p.bytes)).await?;
        if let Err(e) = storage.put(&record.thumb_key(), once(p.thumbnail)).await {
            let _ = storage.delete(&key).await;
            return Err(e);
        }
        record.thumbnail = true;
    } else {
        let (size, sha) = stream_in(state, &key, rest, &sniffed, limit).await?;
        (record.size, record.sha256) = (size, sha);
    }
    if let Err(e) = state.media.records.put(&record).await {
        let _ = state.media.storage.delete(&key).await;
        let _ = state.media.storage.delete(&record.thumb_key()).await;
        return Err(e);
    }
    Ok(record)
}

fn once(b: Vec<u8>) -> ByteStream {
    futures_util::stream::once(async move { Ok(Bytes::from(b)) }).boxed()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `body` to `storage.put` through a small channel, hashing and counting on the way;
/// passing `limit` aborts the write (nothing is kept) with 413.
async fn stream_in<S, E>(state: &AppState, key: &str, body: S, sniffed: &Sniffed, limit: u64) -> Result<(u64, String)>
where
    S: futures_util::Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let feed = async move {
        let mut body = Box::pin(body);
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let msg = format!("upload interrupted: {e}");
                    let _ = tx.send(Err(std::io::Error::other(msg.clone()))).await;
                    return Err(Error::bad_request(msg));
                }
            };
            n += chunk.len() as u64;
            if n > limit {
                let _ = tx.send(Err(std::io::Error::other("over the size limit"))).await;
                return Err(too_large(sniffed, limit));
            }
            hasher.update(&chunk);
            if tx.send(Ok(chunk)).await.is_err() {
                return Err(Error::unavailable("the media store stopped taking the upload"));
            }
        }
        Ok((n, hex(&hasher.finalize())))
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) }).boxed();
    let (put, fed) = tokio::join!(state.media.storage.put(key, stream), feed);
    match (put, fed) {
        (Ok(_), Ok(done)) => Ok(done),
        (_, Err(e)) | (Err(e), Ok(_)) => {
            let _ = state.media.storage.delete(key).await;
            Err(e)
        }
    }
}
