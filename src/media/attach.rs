//! Stored media in messages: turning a send's `medias: [{media_id}]` into what the message
//! keeps, and deleting a conversation's objects with it.
//!
//! [`resolve`] runs on the post path (every door: REST, WebSocket, inbound channels): each
//! `media_id` must name a media of the writer's tenant (else 404, as for any resource of
//! another tenant) and becomes `{media_id, url (signed), content_type, size, name}`; the media
//! is linked to the conversation so [`forget`] finds it. Medias given as a `url` pass through
//! unchanged. Owns the link between messages and stored media, not the message itself.
//!
//! A stored message keeps the URL signed when it was posted, which expires after
//! `media.url_ttl_secs`; every read of history (REST list and get, WebSocket replay and gap
//! fill) passes through [`fresh`], which signs those URLs anew, so an old message's media
//! always opens.

use super::sign::Variant;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::{Media, Message};
use uuid::Uuid;

/// Fills in every `media_id` entry of `medias` (see the module docs).
pub async fn resolve(state: &AppState, tenant: Uuid, conversation: Uuid, medias: &mut [Media]) -> Result<()> {
    for m in medias.iter_mut() {
        let Some(id) = m.media_id else { continue };
        let r = state.media.records.get(id).await?.filter(|r| r.tenant == tenant).ok_or(Error::NotFound("media"))?;
        m.url = state.media.signer.url(&state.public_base(), id, Variant::Original);
        m.content_type = r.content_type.clone();
        m.size = Some(r.size);
        m.name = r.name.clone();
        if r.thumbnail {
            m.preview_url = Some(state.media.signer.url(&state.public_base(), id, Variant::Thumbnail));
        }
        if r.conversation_id != Some(conversation) {
            state.media.records.link(conversation, id).await?;
        }
    }
    Ok(())
}

/// Signs the URL of every stored media of `message` anew (see the module docs); no I/O.
pub fn fresh(state: &AppState, message: &mut Message) {
    if message.medias.iter().all(|m| m.media_id.is_none()) {
        return;
    }
    let base = state.public_base();
    for m in message.medias.iter_mut() {
        if let Some(id) = m.media_id {
            m.url = state.media.signer.url(&base, id, Variant::Original);
            if m.preview_url.as_deref().is_some_and(|p| p.contains("variant=thumbnail")) {
                m.preview_url = Some(state.media.signer.url(&base, id, Variant::Thumbnail));
            }
        }
    }
}

/// [`fresh`] for a page of history.
pub fn fresh_all(state: &AppState, messages: &mut [Message]) {
    for m in messages {
        fresh(state, m);
    }
}

/// Deletes the objects and records of every media used in `conversation` (conversation
/// deletion). Failures are logged: the conversation is gone either way.
pub async fn forget(state: &AppState, conversation: Uuid) {
    let ids = match state.media.records.of_conversation(conversation).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(%conversation, error = %e, "media of a deleted conversation not listed");
            return;
        }
    };
    forget_ids(state, ids.into_iter()).await;
}

/// Deletes the stored media among `medias` (retention, erasure): those with a `media_id`.
pub async fn forget_medias(state: &AppState, medias: &[Media]) {
    forget_ids(state, medias.iter().filter_map(|m| m.media_id)).await;
}

async fn forget_ids(state: &AppState, ids: impl Iterator<Item = Uuid>) {
    for id in ids {
        if let Err(e) = state.media.delete(id).await {
            tracing::warn!(media = %id, error = %e, "media object not deleted");
        }
    }
}
