//! Copying inbound provider media into storage (re-hosting), so messages stop pointing at provider URLs
//! (which expire, or need the provider's credentials — Telegram's even contain the bot token).
//!
//! When an inbound message with medias is stored, [`enqueue`] starts a background job for it:
//! each media is downloaded — a provider reference (WhatsApp media id, Telegram file id, LINE
//! content) through the provider's own `fetch_media`, a plain URL (Twilio, Telnyx, LINE
//! stickers) streamed, with the account's basic auth for Twilio — and stored like an upload
//! (sniffed, limited, images stripped: [`crate::media::upload::store`]). The message then gets the
//! stored media in place of the provider's (`conversations::rehosted`: a `message_updated`).
//! Failures are retried with backoff up to `media.rehost_attempts`; a media the hub refuses
//! (type, size) is given up at once and keeps its provider link. A retried webhook is a
//! duplicate message and starts no second job, so nothing is stored twice.
//!
//! The job lives in this node's task tracker: a node that dies mid-job leaves those medias on
//! their provider links (the message is still complete and readable).

use super::media::MEDIA_REF;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::{Account, Media, ProviderKind};
use uuid::Uuid;

/// Where a provider media is fetched from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A provider reference, fetched by the provider adapter (`Provider::fetch_media`).
    Provider(String),
    /// A URL, streamed.
    Url(String),
}

/// One inbound message's medias to copy in.
#[derive(Debug, Clone)]
pub struct Job {
    pub tenant: Uuid,
    pub account: Uuid,
    pub conversation: Uuid,
    pub message: Uuid,
    /// Index in the message's `medias`, and where to fetch it.
    pub items: Vec<(usize, Source)>,
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

/// Starts the job in the background (see the module docs).
pub fn enqueue(state: &AppState, job: Job) {
    if job.items.is_empty() {
        return;
    }
    let state2 = state.clone();
    state.tasks.spawn(async move { run(&state2, job).await });
}

async fn run(state: &AppState, job: Job) {
    let c = &state.config;
    let mut pending = job.items.clone();
    for attempt in 0..c.media.rehost_attempts {
        if attempt > 0 {
            let wait = crate::retry::backoff(c.channels.retry_base_ms, c.channels.retry_max_ms, attempt);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = state.shutdown.cancelled() => return,
            }
        }
        let account = match state.channel_store.get_account(job.account).await {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(_) => continue,
        };
        let mut done = Vec::new();
        let mut again = Vec::new();
        for (i, src) in pending {
            match copy(state, &job, &account, &src).await {
                Ok(m) => done.push((i, m)),
                Err(e) if e.status().is_client_error() && e.code() != "not_found" => {
                    tracing::info!(media = i, message = %job.message, error = %e, "provider media not re-hosted (refused)");
                }
                Err(e) => {
                    tracing::debug!(media = i, message = %job.message, error = %e.chain(), "provider media re-hosting failed; will retry");
                    again.push((i, src));
                }
            }
        }
        if !done.is_empty()
            && let Err(e) =
                crate::conversations::rehosted(state, job.tenant, job.conversation, job.message, &done).await
        {
            tracing::warn!(message = %job.message, error = %e.chain(), "re-hosted media not recorded on the message");
        }
        pending = again;
        if pending.is_empty() {
            return;
        }
    }
    tracing::warn!(message = %job.message, left = pending.len(), "provider media not re-hosted; they keep their provider links");
}

/// Downloads one media and stores it; the message's media entry for it.
async fn copy(state: &AppState, job: &Job, account: &Account, src: &Source) -> Result<Media> {
    let record = match src {
        Source::Provider(reference) => {
            let provider = state.channels.get(account.provider).ok_or(Error::NotFound("provider"))?;
            let (_, bytes) = provider.fetch_media(&state.http, account, reference).await?;
            let body = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
            crate::media::upload::store(state, job.tenant, Some(job.conversation), None, Box::pin(body)).await?
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
            crate::media::upload::store(state, job.tenant, Some(job.conversation), name, Box::pin(res.bytes_stream()))
                .await?
        }
    };
    Ok(Media {
        url: state.media.signer.url(&state.public_base(), record.id, crate::media::sign::Variant::Original),
        content_type: record.content_type.clone(),
        media_id: Some(record.id),
        size: Some(record.size),
        name: record.name.clone(),
    })
}
