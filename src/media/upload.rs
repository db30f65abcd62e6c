//! `POST /v1.0/media`: a multipart upload, streamed into storage as it arrives.
//!
//! Fields: `conversation_id` (required for an end-user token, and before `file`; optional for
//! API keys, operator and agent tokens, checked the same way a read of that conversation is)
//! and `file`. The type is sniffed from the first bytes ([`super::sniff`]) and the size limit
//! of its kind applies while the bytes stream in (413 as soon as it is passed; nothing is
//! kept). The body is hashed (SHA-256) on its way to storage and never held whole — except a
//! raster image, which is bounded by `media.max_image_bytes` and has to be decoded anyway
//! (size, thumbnail, metadata removed: [`super::picture`]). Owns the HTTP door only.

use super::sign::Variant;
use super::sniff::{HEAD_BYTES, Sniffed, sniff};
use super::{ByteStream, MediaRecord, object_key};
use crate::agents::Caller;
use crate::app::AppState;
use crate::error::{Error, ErrorBody, Json, Result};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
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

#[utoipa::path(post, path = "/v1.0/media", tag = "media",
    request_body(content_type = "multipart/form-data", content = UploadForm),
    description = "Stores a file. The type is sniffed from the bytes and must be on the allow-list; \
        each kind has its size limit. An end-user token must name a `conversation_id` of its scope (before `file`).",
    responses((status = 201, body = Uploaded), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>)> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(ct)
        .map_err(|_| Error::bad_request("send the file as multipart/form-data with a `file` field"))?;
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    let scoped = matches!(&caller, Caller::Client(c) if c.convs.is_some());
    let mut conversation: Option<Uuid> = None;
    let mut stored: Option<MediaRecord> = None;
    while let Some(field) = form.next_field().await.map_err(bad_form)? {
        match field.name().unwrap_or("") {
            "conversation_id" => {
                let text = field.text().await.map_err(bad_form)?;
                let id: Uuid = text.trim().parse().map_err(|_| {
                    Error::invalid("invalid_conversation_id", "conversation_id must be a conversation's id")
                })?;
                caller.messages_of(&state, id).await?;
                conversation = Some(id);
            }
            "file" if stored.is_none() => {
                if scoped && conversation.is_none() {
                    return Err(Error::invalid(
                        "conversation_required",
                        "an end-user token uploads for one of its conversations: send `conversation_id` before `file`",
                    ));
                }
                let name = field.file_name().map(clean_name).filter(|n| !n.is_empty());
                stored = Some(store(&state, caller.tenant(), conversation, name, field).await?);
            }
            _ => {}
        }
    }
    let r = stored.ok_or_else(|| Error::invalid("file_required", "the form has no `file` field"))?;
    Ok((StatusCode::CREATED, Json(Uploaded::of(&state, &r))))
}

fn bad_form(e: multer::Error) -> Error {
    Error::bad_request(format!("the multipart body cannot be read: {e}"))
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
