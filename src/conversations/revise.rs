//! Messages that change after they were sent: edits and deletions (tombstones).
//!
//! The one door for both, whatever the caller (REST today): who may change a message (its
//! author, or the tenant's API), the text limits of posting, and the announcements — a
//! `message_updated` frame to the room on every node (through the broker; a private note's
//! only to connections that see notes) and a `message.updated` / `message.deleted` event.
//! A deleted message keeps its id and seq (history and resume stay gap-free) but loses its
//! text and medias; it can no longer be edited (409). Deleting it again changes nothing and
//! answers the same tombstone. What a channel already delivered is not recalled.

use crate::app::AppState;
use crate::broker::{Event, EventKind};
use crate::error::{Error, Result};
use crate::events::emit;
use crate::model::{Message, now};
use crate::wire::{Publication, ServerFrame};
use uuid::Uuid;

/// Who asks for the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviser {
    /// The tenant's backend (an API key): any message.
    Api,
    /// A participant (by its client or agent token): only messages it wrote.
    Participant(Uuid),
}

impl Reviser {
    fn check(self, m: &Message) -> Result<()> {
        match self {
            Reviser::Api => Ok(()),
            Reviser::Participant(p) if m.author == Some(p) => Ok(()),
            Reviser::Participant(_) => {
                Err(Error::Forbidden("only its author or an API key may change a message".into()))
            }
        }
    }
}

/// Replaces the text of a message; sets `edited_at`.
pub async fn edit(
    state: &AppState,
    tenant: Uuid,
    conversation: Uuid,
    id: Uuid,
    who: Reviser,
    text: String,
) -> Result<Message> {
    super::get(state, tenant, conversation).await?;
    let limits = &state.config.limits;
    if text.len() > limits.max_text_bytes {
        return Err(Error::PayloadTooLarge(format!("text is longer than {} bytes", limits.max_text_bytes)));
    }
    let change = |m: &mut Message| {
        who.check(m)?;
        if m.deleted_at.is_some() {
            return Err(Error::Conflict("the message was deleted; it cannot be edited".into()));
        }
        if text.trim().is_empty() && m.medias.is_empty() {
            return Err(Error::invalid("empty_message", "a message needs text or at least one media"));
        }
        m.text.clone_from(&text);
        m.edited_at = Some(now());
        Ok(true)
    };
    let (m, _) = state.store.change_message(conversation, id, &change).await?.ok_or(Error::NotFound("message"))?;
    announce(state, tenant, EventKind::MessageUpdated, &m).await;
    Ok(m)
}

/// Turns a message into a tombstone: no text, no medias, `deleted_at` set, same id and seq.
/// Idempotent: a second delete answers the tombstone and announces nothing.
pub async fn delete(state: &AppState, tenant: Uuid, conversation: Uuid, id: Uuid, who: Reviser) -> Result<Message> {
    super::get(state, tenant, conversation).await?;
    let change = |m: &mut Message| {
        who.check(m)?;
        if m.deleted_at.is_some() {
            return Ok(false);
        }
        m.text.clear();
        m.medias.clear();
        m.deleted_at = Some(now());
        Ok(true)
    };
    let (m, changed) =
        state.store.change_message(conversation, id, &change).await?.ok_or(Error::NotFound("message"))?;
    if changed {
        announce(state, tenant, EventKind::MessageDeleted, &m).await;
    }
    Ok(m)
}

/// Erasure of a person (`erase`): the messages `people` (participant ids) wrote become
/// tombstones without the endpoint they came in on, and deliveries to them forget the
/// address. Idempotent; announces only a message it changed.
pub(super) async fn redact(
    state: &AppState,
    tenant: Uuid,
    conversation: Uuid,
    id: Uuid,
    people: &[Uuid],
) -> Result<()> {
    // The stored media of erased messages are deleted too (a sync lock, never held across
    // an await: the closure runs inside the store's compare-and-set).
    let dropped = std::sync::Mutex::new(Vec::new());
    let change = |m: &mut Message| {
        let mut changed = false;
        if m.author.is_some_and(|a| people.contains(&a)) {
            if m.deleted_at.is_none() || !m.text.is_empty() || !m.medias.is_empty() {
                m.text.clear();
                dropped.lock().unwrap_or_else(|p| p.into_inner()).extend(m.medias.drain(..));
                m.deleted_at.get_or_insert_with(now);
                changed = true;
            }
            changed |= m.via.take().is_some();
        }
        for d in m.deliveries.iter_mut().filter(|d| people.contains(&d.participant_id) && !d.to.is_empty()) {
            d.to.clear();
            changed = true;
        }
        Ok(changed)
    };
    if let Some((m, true)) = state.store.change_message(conversation, id, &change).await? {
        announce(state, tenant, EventKind::MessageDeleted, &m).await;
    }
    let dropped = dropped.into_inner().unwrap_or_else(|p| p.into_inner());
    crate::media::attach::forget_medias(state, &dropped).await;
    Ok(())
}

/// Puts stored copies in place of a message's provider medias (`crate::media::rehost`): each
/// `(index, media)` replaces the media at that index unless it is gone or already stored.
/// Announced as `message_updated`. A deleted message is left alone.
pub async fn rehosted(
    state: &AppState,
    tenant: Uuid,
    conversation: Uuid,
    id: Uuid,
    replaced: &[(usize, crate::model::Media)],
) -> Result<()> {
    let change = |m: &mut Message| {
        if m.deleted_at.is_some() {
            return Ok(false);
        }
        let mut changed = false;
        for (i, media) in replaced {
            if let Some(slot) = m.medias.get_mut(*i)
                && slot.media_id.is_none()
            {
                *slot = media.clone();
                changed = true;
            }
        }
        Ok(changed)
    };
    if let Some((m, true)) = state.store.change_message(conversation, id, &change).await? {
        announce(state, tenant, EventKind::MessageUpdated, &m).await;
    }
    Ok(())
}

/// The room's `message_updated` frame (on every node) and the event for outside consumers.
async fn announce(state: &AppState, tenant: Uuid, kind: EventKind, m: &Message) {
    let room = m.conversation_id;
    let frame = ServerFrame::MessageUpdated { message: m }.to_text();
    let publication =
        if m.is_internal() { Publication::Internal { room, frame } } else { Publication::Ephemeral { room, frame } };
    if let Err(e) = state.broker.publish(publication).await {
        tracing::warn!(error = %e.chain(), %room, "message_updated frame not published");
    }
    emit(state, Event::new(kind, tenant, Some(room), m)).await;
}
