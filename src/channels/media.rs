//! Inbound media that a provider only names by id (WhatsApp media ids, Telegram file ids, LINE
//! message content), until the re-hosting job (`channels::inbound_media`) has copied them in.
//!
//! Fetching them needs the account's credentials — and Telegram's download URL even contains
//! the bot token — so the stored message gets a URL of ours instead:
//! `/v1.0/media/{account}/{reference}?exp=&sig=`, signed and checked by the one media signer
//! (`media::sign`): a capability URL like a presigned link (an `<img src>` cannot send a
//! bearer header) that expires like every other media link. The handler checks the
//! signature, asks the provider for the bytes and streams them back as they arrive.

use crate::app::AppState;
use crate::error::{Error, Path, Query, Result};
use crate::model::{Account, Media};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

/// Prefix of a media `url` a provider's `parse` leaves for [`resolve`] to turn into ours.
pub const MEDIA_REF: &str = "provider-media:";

/// Rewrites provider references in `medias` into signed URLs of this node.
pub fn resolve(state: &AppState, account: &Account, medias: &mut [Media]) {
    for m in medias.iter_mut() {
        if let Some(reference) = m.url.strip_prefix(MEDIA_REF) {
            m.url = state.media.signer.provider_url(&state.public_base(), account.id, reference);
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Sig {
    #[serde(default)]
    exp: u64,
    sig: String,
}

/// `GET /v1.0/media/{account_id}/{reference}?exp=...&sig=...`
pub async fn fetch(
    State(state): State<AppState>,
    Path((account_id, reference)): Path<(Uuid, String)>,
    Query(q): Query<Sig>,
) -> Result<Response> {
    state.media.signer.check_provider(account_id, &reference, q.exp, &q.sig)?;
    let account = state.channel_store.get_account(account_id).await?.ok_or(Error::NotFound("account"))?;
    let provider = state.channels.get(account.provider).ok_or(Error::NotFound("provider"))?;
    let (content_type, body) = provider.fetch_media(&state.http, &account, &reference).await?;
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "private, max-age=3600".into()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
    ];
    Ok((headers, axum::body::Body::from_stream(body)).into_response())
}

/// GETs `url` (with `bearer` when given): the provider's answer once it said yes, and its
/// content type. Provider errors are a 502-ish `Unavailable`, never the provider's credentials.
async fn fetch_ok(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> Result<(String, reqwest::Response)> {
    let mut req = http.get(url);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.map_err(|_| Error::unavailable("the provider's media server did not answer"))?;
    if !res.status().is_success() {
        return Err(Error::unavailable(format!("the provider refused the media ({})", res.status().as_u16())));
    }
    let ct =
        res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/octet-stream");
    Ok((ct.to_string(), res))
}

/// GETs `url` (with `bearer` when given) and returns the body (see [`fetch_ok`]).
pub async fn download(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> Result<(String, bytes::Bytes)> {
    let (ct, res) = fetch_ok(http, url, bearer).await?;
    let body = res.bytes().await.map_err(|_| Error::unavailable("media download interrupted"))?;
    Ok((ct, body))
}

/// [`download`] without reading the body: `(content type, body stream)`.
pub async fn download_stream(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> Result<(String, crate::media::ByteStream)> {
    use futures_util::{StreamExt, TryStreamExt};
    let (ct, res) = fetch_ok(http, url, bearer).await?;
    let body = res.bytes_stream().map_err(|_| std::io::Error::other("media download interrupted")).boxed();
    Ok((ct, body))
}
