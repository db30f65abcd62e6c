//! Inbound media that a provider only names by id (WhatsApp media ids, Telegram file ids, LINE
//! message content).
//!
//! Fetching them needs the account's credentials — and Telegram's download URL even contains
//! the bot token — so the stored message gets a URL of ours instead:
//! `/v1.0/media/{account}/{reference}?sig=<hex HMAC-SHA256(key, "{account}/{reference}")>`, a
//! capability URL like a presigned link (an `<img src>` cannot send a bearer header). The
//! handler checks the signature, asks the provider for the bytes and streams them back.

use crate::app::AppState;
use crate::error::{Error, Path, Query, Result};
use crate::model::{Account, Media};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

/// Prefix of a media `url` a provider's `parse` leaves for [`resolve`] to turn into ours.
pub const MEDIA_REF: &str = "provider-media:";

fn sign(key: &[u8], account: Uuid, reference: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{account}/{reference}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Rewrites provider references in `medias` into signed URLs of this node.
pub fn resolve(state: &AppState, account: &Account, medias: &mut [Media]) {
    for m in medias.iter_mut() {
        if let Some(reference) = m.url.strip_prefix(MEDIA_REF) {
            let r: String = form_urlencoded::byte_serialize(reference.as_bytes()).collect();
            let sig = sign(&state.media_key, account.id, reference);
            m.url = format!("{}/v1.0/media/{}/{r}?sig={sig}", state.public_base(), account.id);
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Sig {
    sig: String,
}

/// `GET /v1.0/media/{account_id}/{reference}?sig=...`
pub async fn fetch(
    State(state): State<AppState>,
    Path((account_id, reference)): Path<(Uuid, String)>,
    Query(q): Query<Sig>,
) -> Result<Response> {
    let expected = sign(&state.media_key, account_id, &reference);
    if !crate::auth::constant_time_eq(q.sig.as_bytes(), expected.as_bytes()) {
        return Err(Error::Forbidden("media signature does not match".into()));
    }
    let account = state.channel_store.get_account(account_id).await?.ok_or(Error::NotFound("account"))?;
    let provider = state.channels.get(account.provider).ok_or(Error::NotFound("provider"))?;
    let (content_type, bytes) = provider.fetch_media(&state.http, &account, &reference).await?;
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "private, max-age=3600".into())], bytes)
        .into_response())
}

/// GETs `url` (with `bearer` when given) and returns the body; provider errors are a 502-ish
/// `Unavailable`, never the provider's credentials.
pub async fn download(http: &reqwest::Client, url: &str, bearer: Option<&str>) -> Result<(String, bytes::Bytes)> {
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
    let ct = ct.to_string();
    let body = res.bytes().await.map_err(|_| Error::unavailable("media download interrupted"))?;
    Ok((ct, body))
}
