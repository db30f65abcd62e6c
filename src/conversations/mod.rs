//! Conversations as the rest of the system changes them: the one place where writes are
//! validated, applied to the store and announced as events.
//!
//! REST handlers, the WebSocket gateway and the inbound door for providers call these functions
//! instead of the store, so every door gets the same rules and the same events. This module
//! owns no state and no transport: HTTP shapes live in `api`, frames in `ws`.

mod participants;
mod post;

pub use participants::{
    NewParticipant, add_participant, link_endpoint, member, participant, remove_participant, webchat_participant,
};
pub use post::{Author, PostRequest, post, post_many};

use crate::app::AppState;
use crate::broker::{Event, EventKind};
use crate::error::{Error, Result};
use crate::model::{Conversation, now};
use serde::Serialize;
use uuid::Uuid;

/// Events on their way to the broker: written by every request, read by one task per node,
/// so events leave in the order they were emitted without a broker round trip on the write
/// path (on Redis that is a PUBLISH and an XADD per event the sender no longer waits for).
#[derive(Debug)]
pub struct EventQueue {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Event>>>,
}

impl Default for EventQueue {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        EventQueue { tx, rx: std::sync::Mutex::new(Some(rx)) }
    }
}

/// Puts `event` into the webhook outbox when a webhook wants it (durably, before the caller
/// answers) and queues it for publishing; a failure is logged and never fails the write that
/// caused it.
pub async fn emit(state: &AppState, event: Event) {
    if let Err(e) = crate::webhooks::record(state, std::slice::from_ref(&event)).await {
        tracing::warn!(error = %e, kind = %event.kind, "event not queued for webhooks");
    }
    announce(state, event).await;
}

/// Queues `event` for publishing only (it is in the webhook outbox already, or must not go
/// there). Before the publisher task runs (tools, tests building state only) it publishes
/// inline.
pub(crate) async fn announce(state: &AppState, event: Event) {
    let started = state.events.rx.lock().map(|rx| rx.is_none()).unwrap_or(true);
    if !started {
        return publish(state, &event).await;
    }
    if let Err(e) = state.events.tx.send(event) {
        publish(state, &e.0).await;
    }
}

async fn publish(state: &AppState, event: &Event) {
    if let Err(e) = state.broker.publish_event(event).await {
        tracing::warn!(error = %e.chain(), kind = %event.kind, "event not published");
    }
}

/// Starts the node's event publisher; on shutdown it publishes what is queued, then stops.
pub fn start_event_publisher(state: &AppState) {
    let Some(mut rx) = state.events.rx.lock().ok().and_then(|mut r| r.take()) else { return };
    let st = state.clone();
    state.tasks.spawn(async move {
        loop {
            tokio::select! {
                biased;
                e = rx.recv() => match e {
                    Some(e) => publish(&st, &e).await,
                    None => return,
                },
                _ = st.shutdown.cancelled() => {
                    while let Ok(e) = rx.try_recv() {
                        publish(&st, &e).await;
                    }
                    return;
                }
            }
        }
    });
}

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
    let t = now();
    let c = Conversation {
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
    };
    state.store.create_conversation(&c).await?;
    emit(state, event(EventKind::ConversationCreated, tenant, c.id, &c)).await;
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
) -> Result<Conversation> {
    let mut c = get(state, tenant, id).await?;
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
    emit(state, event(EventKind::ConversationDeleted, tenant, id, &c)).await;
    Ok(c)
}
