//! Conversations as the rest of the system changes them: the one place where writes are
//! validated, applied to the store and announced as events.
//!
//! REST handlers, the WebSocket gateway and the inbound door for providers call these functions
//! instead of the store, so every door gets the same rules and the same events. This module
//! owns no state and no transport: HTTP shapes live in `api`, frames in `ws`.

pub mod contacts;
pub mod erase;
pub mod merge;
mod open;
mod participants;
mod post;
pub mod retention;
mod revise;
pub mod status;
pub mod window;

pub use open::{NewRoom, Opening, open_room};
pub use participants::{
    ContactOf, NewParticipant, add_participant, add_participant_to, link_endpoint, member, participant,
    remove_participant, webchat_participant,
};
pub use post::{Author, PostRequest, RoomRead, post, post_many, read_room, screen};
pub use revise::{Reviser, delete as delete_message, edit as edit_message, rehosted};

use crate::app::AppState;
use crate::broker::{Event, EventKind};
use crate::error::{Error, Result};
use crate::events::emit;
use crate::model::{Conversation, now};
use serde::Serialize;
use uuid::Uuid;

pub(crate) fn event(kind: EventKind, tenant: Uuid, conversation: Uuid, data: impl Serialize) -> Event {
    Event::new(kind, tenant, Some(conversation), data)
}

/// The conversation, if it exists and belongs to `tenant`; else 404.
pub async fn get(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Conversation> {
    state.store.get_conversation(tenant, id).await?.ok_or(Error::NotFound("conversation"))
}

/// Checks a user-supplied short string against `limits.max_name_bytes`.
pub fn check_name(state: &AppState, field: &'static str, value: &str) -> Result<()> {
    crate::limits::check_name(&state.config.limits, field, value)
}

fn check_metadata(metadata: &serde_json::Value) -> Result<()> {
    if !metadata.is_object() {
        return Err(Error::invalid("invalid_metadata", "metadata must be a JSON object"));
    }
    Ok(())
}

pub async fn create(
    state: &AppState,
    tenant: Uuid,
    name: String,
    detail: String,
    metadata: serde_json::Value,
) -> Result<Conversation> {
    create_with_id(state, Uuid::now_v7(), tenant, name, detail, metadata).await
}

/// A conversation as it is when made: open, unassigned, no messages, created now.
pub(crate) fn fresh(id: Uuid, tenant: Uuid, name: String, detail: String, metadata: serde_json::Value) -> Conversation {
    let t = now();
    Conversation {
        id,
        tenant_id: tenant,
        name,
        detail,
        metadata,
        last_seq: 0,
        tm_create: t,
        tm_update: t,
        owner_type: None,
        owner_id: None,
        lifecycle: Default::default(),
        timers: None,
    }
}

/// `create` with a caller-chosen id (inbound channels reserve the id in the room binding first).
pub async fn create_with_id(
    state: &AppState,
    id: Uuid,
    tenant: Uuid,
    name: String,
    detail: String,
    metadata: serde_json::Value,
) -> Result<Conversation> {
    check_name(state, "name", &name)?;
    check_name(state, "detail", &detail)?;
    check_metadata(&metadata)?;
    let c = fresh(id, tenant, name, detail, metadata);
    state.store.create_conversation(&c).await?;
    emit(state, event(EventKind::ConversationCreated, tenant, c.id, &c)).await;
    // A room nobody writes to resolves too (with `resolve_after`).
    status::plan(state, &c, None).await;
    Ok(c)
}

/// Applies the given fields; `None` leaves a field as it is.
pub async fn update(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    name: Option<String>,
    detail: Option<String>,
    metadata: Option<serde_json::Value>,
    timers: Option<crate::model::Timers>,
) -> Result<Conversation> {
    let mut c = get(state, tenant, id).await?;
    let retime = timers.is_some();
    if timers.is_some() {
        c.timers = timers;
    }
    if let Some(n) = name {
        check_name(state, "name", &n)?;
        c.name = n;
    }
    if let Some(d) = detail {
        check_name(state, "detail", &d)?;
        c.detail = d;
    }
    if let Some(m) = metadata {
        check_metadata(&m)?;
        c.metadata = m;
    }
    c.tm_update = now();
    if !state.store.update_conversation(&c).await? {
        return Err(Error::NotFound("conversation"));
    }
    emit(state, event(EventKind::ConversationUpdated, tenant, id, &c)).await;
    if retime {
        status::plan(state, &c, None).await;
    }
    Ok(c)
}

pub async fn delete(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Conversation> {
    let c = get(state, tenant, id).await?;
    let members = state.store.list_participants(id).await?;
    if !state.store.delete_conversation(tenant, id).await? {
        return Err(Error::NotFound("conversation"));
    }
    for p in &members {
        participants::unbind_all(state, p).await;
    }
    crate::media::attach::forget(state, id).await;
    emit(state, event(EventKind::ConversationDeleted, tenant, id, &c)).await;
    Ok(c)
}
