//! Stored media in messages: turning a send's `medias: [{media_id}]` into what the message
//! keeps, and deleting a conversation's objects with it.
//!
//! [`resolve`] runs on the post path (every door: REST, WebSocket, inbound channels): each
//! `media_id` must name a media of the writer's tenant (else 404, as for any resource of
//! another tenant) and becomes `{media_id, url (signed), content_type, size, name}`; the media
//! is linked to the conversation so [`forget`] finds it. Medias given as a `url` pass through
//! unchanged. Owns the link between messages and stored media, not the message itself.

use super::sign::Variant;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::Media;
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
        if r.conversation_id != Some(conversation) {
            state.media.records.link(conversation, id).await?;
        }
    }
    Ok(())
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
