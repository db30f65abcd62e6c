//! Copying inbound provider media into storage (re-hosting), so messages stop pointing at provider URLs
//! (which expire, or need the provider's credentials — Telegram's even contain the bot token).
//!
//! When an inbound message with medias is stored, a job for it goes to the re-hosting queue
//! (`channels::inbound_rehost`: durable on Redis, in-process on memory), and each round ([`attempt`]):
//! each media is downloaded — a provider reference (WhatsApp media id, Telegram file id, LINE
//! content) through the provider's own `fetch_media`, a plain URL (Twilio, Telnyx, LINE
//! stickers) streamed, with the account's basic auth for Twilio — and stored like an upload
//! (sniffed, limited, images stripped: [`crate::media::upload::store`]). The message then gets the
//! stored media in place of the provider's (`conversations::rehosted`: a `message_updated`).
//! Failures are retried with backoff up to `media.rehost_attempts`; a media the hub refuses
//! (type, size) is given up at once and keeps its provider link. A retried webhook is a
//! duplicate message and starts no second job, so nothing is stored twice.
//!
//! Files that come inside the webhook itself (email attachments) need no download: [`store_files`]
//! stores them before the message is posted, and the message carries them from the start.
//!
//! Scheduling, retries and surviving a restart are the queue's (`channels::inbound_rehost`); this file
//! owns what one round does.

use super::media::MEDIA_REF;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::media::MediaRecord;
use crate::model::{Account, Media, ProviderKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a provider media is fetched from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A provider reference, fetched by the provider adapter (`Provider::fetch_media`).
    Provider(String),
    /// A URL, streamed.
    Url(String),
}

/// One inbound message's medias to copy in (what the re-hosting queue carries).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub tenant: Uuid,
    pub account: Uuid,
    pub conversation: Uuid,
    pub message: Uuid,
    /// Index in the message's `medias`, and where to fetch it.
    pub items: Vec<(usize, Source)>,
    /// Rounds made so far.
    #[serde(default)]
    pub attempt: u32,
    /// Not to be tried before this time (unix ms): a retry's backoff, durable across nodes.
    #[serde(default)]
    pub not_before_ms: u64,
    /// The durable queue entry this job came from, acknowledged once the job is settled.
    #[serde(skip)]
    pub token: Option<String>,
}

/// The sources of `medias` as a provider's `parse` left them (before they were resolved).
pub fn sources(medias: &[Media]) -> Vec<(usize, Source)> {
    medias
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            if let Some(r) = m.url.strip_prefix(MEDIA_REF) {
                Some((i, Source::Provider(r.to_string())))
            } else if m.media_id.is_none() && (m.url.starts_with("https://") || m.url.starts_with("http://")) {
                Some((i, Source::Url(m.url.clone())))
            } else {
                None
            }
        })
        .collect()
}

/// Stores the files a webhook carried (email attachments) like uploads — type sniffed from
/// the bytes, allow-listed, limited per kind — and returns their media entries, plus a line
/// of text for each file that was refused (kept out, with the reason, so the reader knows it
/// existed). At most `room` files are taken. A storage failure removes what was stored and is
/// returned (the provider retries the webhook).
pub async fn store_files(
    state: &AppState,
    tenant: Uuid,
    files: Vec<super::InboundFile>,
    room: usize,
) -> Result<(Vec<Media>, Vec<String>)> {
    let mut medias = Vec::new();
    let mut notes = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let shown = f.name.clone().unwrap_or_else(|| "unnamed".into());
        if i >= room {
            notes.push(format!("[attachment not kept: {shown}: too many files in one message]"));
            continue;
        }
        let size = f.bytes.len();
        let body = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(f.bytes) });
        match crate::media::upload::store(state, tenant, None, f.name, Box::pin(body)).await {
            Ok(r) => medias.push(entry(state, &r)),
            Err(e) if e.status().is_client_error() => {
                notes.push(format!("[attachment not kept: {shown} ({size} bytes): {}]", e.message()));
            }
            Err(e) => {
                forget_stored(state, &medias).await;
                return Err(e);
            }
        }
    }
    Ok((medias, notes))
}

/// Deletes media stored by [`store_files`] for a message that was not kept (a duplicate).
pub async fn forget_stored(state: &AppState, medias: &[Media]) {
    crate::media::attach::forget_medias(state, medias).await;
}

fn entry(state: &AppState, record: &crate::media::MediaRecord) -> Media {
    Media {
        url: state.media.signer.url(&state.public_base(), record.id, crate::media::sign::Variant::Original),
        content_type: record.content_type.clone(),
        media_id: Some(record.id),
        size: Some(record.size),
        name: record.name.clone(),
        preview_url: record
            .thumbnail
            .then(|| state.media.signer.url(&state.public_base(), record.id, crate::media::sign::Variant::Thumbnail)),
    }
}

/// One round of `job`: copies every pending media in, records those copied on the message
/// (a `message_updated`), and returns what is left to retry. `None`: nothing more to do (the
/// account is gone). Refused media (type, size) are dropped from the job: they keep their
/// provider links.
pub async fn attempt(state: &AppState, job: &Job) -> Option<Vec<(usize, Source)>> {
    let account = match state.channel_store.get_account(job.account).await {
        Ok(Some(a)) => a,
        Ok(None) => return None,
        Err(_) => return Some(job.items.clone()),
    };
    let mut done = Vec::new();
    let mut again = Vec::new();
    for (i, src) in &job.items {
        match copy(state, job, &account, src).await {
            Ok(m) => done.push((*i, m)),
            Err(e) if e.status().is_client_error() && e.code() != "not_found" => {
                tracing::info!(media = i, message = %job.message, error = %e, "provider media not re-hosted (refused)");
            }
            Err(e) => {
                tracing::debug!(media = i, message = %job.message, error = %e.chain(), "provider media re-hosting failed; will retry");
                again.push((*i, src.clone()));
            }
        }
    }
    if !done.is_empty()
        && let Err(e) = crate::conversations::rehosted(state, job.tenant, job.conversation, job.message, &done).await
    {
        tracing::warn!(message = %job.message, error = %e.chain(), "re-hosted media not recorded on the message");
    }
    Some(again)
}

/// Streams a download into storage like an upload; a download that breaks off is
/// `Unavailable` (retried), not the 400 of an interrupted upload.
async fn store_download<S, E>(state: &AppState, job: &Job, name: Option<String>, body: S) -> Result<MediaRecord>
where
    S: futures_util::Stream<Item = std::result::Result<bytes::Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    use futures_util::TryStreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    let broke = std::sync::Arc::new(AtomicBool::new(false));
    let flag = broke.clone();
    let body = body.inspect_err(move |_| flag.store(true, Ordering::Relaxed));
    match crate::media::upload::store(state, job.tenant, Some(job.conversation), name, body).await {
        Err(_) if broke.load(Ordering::Relaxed) => Err(Error::unavailable("the media download broke off")),
        r => r,
    }
}

/// Downloads one media and stores it; the message's media entry for it.
async fn copy(state: &AppState, job: &Job, account: &Account, src: &Source) -> Result<Media> {
    let record = match src {
        Source::Provider(reference) => {
            let provider = state.channels.get(account.provider).ok_or(Error::NotFound("provider"))?;
            // Streamed into storage: the size limit applies while the bytes arrive.
            let (_, body) = provider.fetch_media(&state.http, account, reference).await?;
            store_download(state, job, None, body).await?
        }
        Source::Url(url) => {
            let mut req = state.http.get(url);
            if account.provider == ProviderKind::Twilio
                && let (Ok(sid), Ok(token)) = (account.secret("account_sid"), account.secret("auth_token"))
            {
                req = req.basic_auth(sid, Some(token));
            }
            let res = req.send().await.map_err(|_| Error::unavailable("the provider's media server did not answer"))?;
            if !res.status().is_success() {
                return Err(Error::unavailable(format!("the provider refused the media ({})", res.status().as_u16())));
            }
            let name = url.rsplit('/').next().map(crate::media::upload::clean_name).filter(|n| n.contains('.'));
            store_download(state, job, name, res.bytes_stream()).await?
        }
    };
    Ok(entry(state, &record))
}
