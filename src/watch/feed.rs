//! The node's one feed task: broker events in, `conversation` frames out to watchers.
//!
//! Events are taken in batches and coalesced per conversation (a burst of messages in one
//! room becomes one frame carrying the newest message). A new message's frame carries the
//! conversation as stored now (read once per conversation and batch), so `last_seq`, name and
//! owner are current. Each frame is serialized once and shared by every watcher it goes to;
//! agents get only what `Conversation::visible_to_agent` allows, and a `removed` frame when a change
//! takes a conversation out of their view.

use super::Watchers;
use crate::app::AppState;
use crate::model::{Conversation, Message};
use crate::wire::ServerFrame;
use crate::wire::{Event, EventKind, Publication};
use futures_util::StreamExt;
use std::sync::Arc;
use uuid::Uuid;

/// Most events handled as one batch.
const BATCH: usize = 256;
/// Conversations read concurrently for one batch.
const READS: usize = 16;

/// What an event did to a conversation.
#[derive(Debug)]
enum Change {
    Created(Conversation),
    Updated(Conversation),
    Deleted(Conversation),
    /// A new message; the conversation is read when the batch is sent.
    Message(Message),
}

#[derive(Debug)]
struct Item {
    tenant: Uuid,
    conversation: Uuid,
    change: Change,
}

/// Starts the feed task (once per node); it ends on shutdown.
pub fn start(state: &AppState) {
    let Some(mut rx) = state.watchers.take_receiver() else { return };
    let st = state.clone();
    state.tasks.spawn(async move {
        let watchers = st.watchers.clone();
        loop {
            let first = tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => e,
                    None => return,
                },
                _ = st.shutdown.cancelled() => return,
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            send(&st, &watchers, coalesce(batch)).await;
            if watchers.take_overflow() {
                tracing::warn!("conversation watch queue overflowed; watchers reload their lists");
                for tenant in watchers.tenants() {
                    watchers.live(tenant, true);
                }
            }
        }
    });
}

/// Parses the batch in order, keeping only the newest message per conversation (at the
/// position of that newest one, so it follows the conversation's creation).
fn coalesce(batch: Vec<Event>) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::with_capacity(batch.len());
    for e in batch {
        let Some(conversation) = e.conversation_id else { continue };
        let change = match e.kind {
            EventKind::MessageCreated => e.data.parse().ok().map(Change::Message),
            kind => e.data.parse::<Conversation>().ok().and_then(|c| match kind {
                EventKind::ConversationCreated => Some(Change::Created(c)),
                EventKind::ConversationUpdated => Some(Change::Updated(c)),
                EventKind::ConversationDeleted => Some(Change::Deleted(c)),
                _ => None,
            }),
        };
        let Some(change) = change else {
            tracing::debug!(kind = %e.kind, "ignoring an event that does not parse");
            continue;
        };
        if let Change::Message(m) = &change {
            let same = |i: &Item| i.conversation == conversation && matches!(i.change, Change::Message(_));
            if items.iter().any(|i| same(i) && matches!(&i.change, Change::Message(old) if old.seq > m.seq)) {
                continue;
            }
            items.retain(|i| !same(i));
        }
        items.push(Item { tenant: e.tenant_id, conversation, change });
    }
    items
}

/// Reads the conversations behind message items, then sends every item's frames in order. A
/// conversation that cannot be read (store unavailable) costs its frame: that tenant's
/// watchers are told to reload (`watching`) instead.
async fn send(state: &AppState, watchers: &Watchers, items: Vec<Item>) {
    let wanted: Vec<Option<(Uuid, Uuid)>> =
        items.iter().map(|i| matches!(i.change, Change::Message(_)).then_some((i.tenant, i.conversation))).collect();
    let reads: Vec<Result<Option<Conversation>, ()>> = futures_util::stream::iter(wanted.into_iter().map(|key| {
        let store = state.store.clone();
        async move {
            let Some((tenant, id)) = key else { return Ok(None) };
            store.get_conversation(tenant, id).await.map_err(|e| {
                tracing::warn!(error = %e.chain(), conversation = %id, "watch: conversation not readable; watchers reload");
            })
        }
    }))
    .buffered(READS)
    .collect()
    .await;
    let mut reload = Vec::new();
    for (item, read) in items.iter().zip(reads) {
        let Ok(read) = read else {
            reload.push(item.tenant);
            continue;
        };
        let (event, conversation, last_message) = match &item.change {
            Change::Created(c) => ("created", c, None),
            Change::Updated(c) => ("updated", c, None),
            Change::Deleted(c) => ("deleted", c, None),
            Change::Message(m) => match &read {
                Some(c) => ("updated", c, Some(m)),
                None => continue, // deleted meanwhile: its `deleted` frame follows
            },
        };
        let frame = |event: &str, c: Option<&Conversation>, m: Option<&Message>| {
            let f = ServerFrame::Conversation {
                event,
                conversation_id: item.conversation,
                conversation: c,
                last_message: m,
            };
            Arc::new(Publication::Direct { frame: f.to_text() })
        };
        let full = frame(event, Some(conversation), last_message);
        // Agents lose sight of a conversation given to someone else; they are told so, without
        // its contents.
        let hidden = (event == "updated" && last_message.is_none()).then(|| frame("removed", None, None));
        watchers.send(item.tenant, |w| {
            if !w.agent || conversation.visible_to_agent(&w.identity) { Some(full.clone()) } else { hidden.clone() }
        });
    }
    reload.sort();
    reload.dedup();
    for tenant in reload {
        watchers.live(tenant, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_event(tenant: Uuid, conv: Uuid, seq: u64) -> Event {
        let m = serde_json::json!({
            "id": Uuid::now_v7(), "conversation_id": conv, "seq": seq, "author": null,
            "direction": "outbound", "text": format!("m{seq}"), "medias": [], "status": "sent",
            "tm_create": "2025-01-15T10:04:05.120Z"
        });
        Event::new(EventKind::MessageCreated, tenant, Some(conv), m)
    }

    #[test]
    fn a_burst_of_messages_becomes_the_newest_one_after_the_creation() {
        let (t, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let c = Conversation {
            id: a,
            tenant_id: t,
            name: "a".into(),
            detail: String::new(),
            metadata: serde_json::json!({}),
            last_seq: 0,
            tm_create: crate::model::now(),
            tm_update: crate::model::now(),
            owner_type: None,
            owner_id: None,
            lifecycle: Default::default(),
            timers: None,
        };
        let batch = vec![
            Event::new(EventKind::ConversationCreated, t, Some(a), &c),
            message_event(t, a, 1),
            message_event(t, b, 7),
            message_event(t, a, 3),
            message_event(t, a, 2),
            Event::new(EventKind::ParticipantAdded, t, Some(a), serde_json::json!({})),
        ];
        let items = coalesce(batch);
        let got: Vec<(Uuid, Option<u64>)> = items
            .iter()
            .map(|i| (i.conversation, if let Change::Message(m) = &i.change { Some(m.seq) } else { None }))
            .collect();
        assert_eq!(got, vec![(a, None), (b, Some(7)), (a, Some(3))]);
    }
}
