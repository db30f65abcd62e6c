//! Forgetting a person, and handing over everything about them first.
//!
//! Erasure (`DELETE /v1.0/contacts/{id}?erase=true`) walks the contact's conversations: every
//! message one of its participants wrote becomes a tombstone (text, medias and the endpoint it
//! came in on removed; seq kept, so history stays gap-free), deliveries to it forget the
//! address, a conversation named after it is renamed, its participants leave (releasing their
//! channel bindings), and the contact is removed with an `erased` tombstone, freeing its
//! addresses. Each step is idempotent, so an erasure asked again — or interrupted and retried —
//! finishes the job and answers the same. Export reads the same walk without changing it.

use super::contacts::{self, event};
use crate::app::AppState;
use crate::contacts::{Applied, Change, Tomb};
use crate::error::{Error, Result};
use crate::events::emit;
use crate::model::{Contact, Conversation, Message, Participant};
use crate::store::SeqRange;
use crate::wire::EventKind;
use serde::Serialize;
use uuid::Uuid;

/// Messages read per step while walking a history.
const BATCH: usize = 200;

/// One conversation of an export.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportedConversation {
    pub conversation: Conversation,
    /// The contact's participants in it.
    pub participants: Vec<Participant>,
    /// Every message those participants wrote, oldest first.
    pub messages: Vec<Message>,
}

/// Everything Switchboard holds about a contact.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub contact: Contact,
    pub conversations: Vec<ExportedConversation>,
}

/// Every conversation of `contact`, oldest page last (all of them).
async fn all_conversations(state: &AppState, tenant: Uuid, contact: Uuid) -> Result<Vec<Conversation>> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = contacts::conversations(state, tenant, contact, before, 100).await?;
        let done = page.len() < 100;
        before = page.last().map(|c| c.id);
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// Calls `each` with every batch of `conversation`'s history, oldest first.
async fn walk(state: &AppState, conversation: Uuid, mut each: impl FnMut(Vec<Message>)) -> Result<()> {
    let mut after = 0;
    loop {
        let batch =
            state.store.messages(conversation, SeqRange { after: Some(after), before: None, limit: BATCH }).await?;
        let done = batch.len() < BATCH;
        after = batch.last().map_or(after, |m| m.seq);
        each(batch);
        if done {
            return Ok(());
        }
    }
}

/// The participants of `conversation` that are contact `contact`.
async fn participants_of(state: &AppState, conversation: Uuid, contact: Uuid) -> Result<Vec<Participant>> {
    let all = state.store.list_participants(conversation).await?;
    Ok(all.into_iter().filter(|p| p.contact_id == Some(contact)).collect())
}

pub async fn export(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Export> {
    let contact = contacts::get(state, tenant, id).await?;
    let mut conversations = Vec::new();
    for conversation in all_conversations(state, tenant, id).await? {
        let participants = participants_of(state, conversation.id, id).await?;
        let ids: Vec<Uuid> = participants.iter().map(|p| p.id).collect();
        let mut messages = Vec::new();
        walk(state, conversation.id, |batch| {
            messages.extend(batch.into_iter().filter(|m| m.author.is_some_and(|a| ids.contains(&a))));
        })
        .await?;
        conversations.push(ExportedConversation { conversation, participants, messages });
    }
    Ok(Export { contact, conversations })
}

/// Erases contact `id` (see the module docs). Erasing an erased contact answers the same.
pub async fn erase(state: &AppState, tenant: Uuid, id: Uuid) -> Result<()> {
    let contact = match state.contacts.get(tenant, id).await? {
        Some(c) => c,
        None if state.contacts.tomb(tenant, id).await? == Some(Tomb::Erased) => return Ok(()),
        None => return Err(Error::NotFound("contact")),
    };
    for conversation in all_conversations(state, tenant, id).await? {
        let mine = participants_of(state, conversation.id, id).await?;
        let ids: Vec<Uuid> = mine.iter().map(|p| p.id).collect();
        let mut touched = Vec::new();
        walk(state, conversation.id, |batch| {
            touched.extend(
                batch
                    .into_iter()
                    .filter(|m| {
                        m.author.is_some_and(|a| ids.contains(&a))
                            || m.deliveries.iter().any(|d| ids.contains(&d.participant_id))
                    })
                    .map(|m| m.id),
            );
        })
        .await?;
        for m in touched {
            super::revise::redact(state, tenant, conversation.id, m, &ids).await?;
        }
        if names_them(&conversation, &contact) {
            let name = Some("Erased contact".to_string());
            super::update(state, tenant, conversation.id, name, None, None, None).await?;
        }
        for p in mine {
            match super::remove_participant(state, tenant, conversation.id, p.id).await {
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    for _ in 0..contacts::ATTEMPTS {
        let Some(old) = state.contacts.get(tenant, id).await? else { break };
        let ch = Change { remove: vec![(old, Tomb::Erased)], ..Default::default() };
        if state.contacts.apply(tenant, &ch).await? == Applied::Done {
            emit(state, event(EventKind::ContactErased, tenant, serde_json::json!({ "id": id }))).await;
            return Ok(());
        }
    }
    Err(Error::unavailable("the contact kept changing; retry the erasure"))
}

/// Whether a conversation's name is the contact's name or one of its addresses (an inbound
/// room is named after its first sender).
fn names_them(c: &Conversation, contact: &Contact) -> bool {
    let name = c.name.trim();
    !name.is_empty() && (name == contact.name.trim() || contact.addresses.iter().any(|a| a.target == name))
}
