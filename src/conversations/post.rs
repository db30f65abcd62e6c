//! The post path every message takes, whatever door it came in by.
//!
//! validate → resolve the room → `store.append` (seq assigned, persisted and published in one
//! atomic step) → event. The caller acknowledges only after this returns `Ok`, so an ack always
//! means "durable and on its way to every subscriber".

use crate::app::AppState;
use crate::broker::{Event, EventKind};
use crate::channels::dispatch;
use crate::error::{Error, Result};
use crate::events::announce;
use crate::model::Conversation;
use crate::model::{Direction, Endpoint, Media, Message, MessageStatus, Participant, Visibility, now};
use crate::store::{Appended, Draft, MemberList};
use crate::wire::EventData;
use axum::extract::ws::Utf8Bytes;
use std::sync::Arc;
use uuid::Uuid;

/// Who is writing.
#[derive(Debug, Clone)]
pub enum Author {
    /// The tenant's backend through the REST API.
    Api,
    /// A participant of the conversation (chat user, SMS sender…); boxed, it is large.
    Participant(Box<Participant>),
}

#[derive(Debug, Clone)]
pub struct PostRequest {
    pub tenant: Uuid,
    pub conversation_id: Uuid,
    pub author: Author,
    pub text: String,
    pub medias: Vec<Media>,
    /// The sender's retry key; the same key from the same author yields the original message.
    pub client_id: Option<String>,
    /// The endpoint a participant wrote from, when not its primary address (inbound channels).
    pub via: Option<Endpoint>,
    /// `via` of the send: deliver through this account to participants reachable on it.
    pub send_via: Option<Uuid>,
    /// The intercept webhooks already ruled on this content ([`screen`]): not asked again.
    pub screened: bool,
    /// `Internal` for a private note: stored and shown to operators and agents, never
    /// delivered over a channel (no deliveries planned). Who may write one is the door's check.
    pub visibility: Visibility,
    /// Send as this WhatsApp template (`text` is its rendered body): lifts a closed window.
    pub template: Option<crate::model::TemplateSend>,
    /// A Messenger/Instagram message tag: lifts a closed window where the account allows it.
    pub tag: Option<String>,
    /// The room as the door read it for this post a moment ago (or created it: the inbound
    /// door's new room), so the post reads it no second time. `None`: the post reads it
    /// (usually from the node's room cache).
    pub room: Option<RoomRead>,
}

/// A room's conversation and members, read together.
pub type RoomRead = (Arc<Conversation>, MemberList);

/// The room's conversation and members as `crate::store::Store::cached_conversation` and
/// `members` give them, read together (one round of I/O); `None` when the conversation is
/// unknown or another tenant's.
pub async fn read_room(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Option<RoomRead>> {
    let (c, members) = tokio::try_join!(state.store.cached_conversation(tenant, id), state.store.members(id))?;
    Ok(c.map(|c| (c, members)))
}

const MAX_CLIENT_ID: usize = 128;

/// A draft's `message.created` (a webhook wants it), and whether its append writes it to the
/// webhook outbox (else the post path does, right after).
type Hooked = (Event, bool);

/// Validates and appends a message; see the module docs.
pub async fn post(state: &AppState, req: PostRequest) -> Result<Appended> {
    post_many(state, vec![req]).await.pop().unwrap_or_else(|| Err(Error::internal("no outcome")))
}

/// `post` for a burst (one WebSocket sender's queued `send`s): one outcome per request, in
/// order. Each room is read once, the drafts are appended together (`Store::append_many`:
/// one Redis pipeline) and their channel deliveries queued together (`Outbox::enqueue_many`:
/// one more), so a fast sender costs a few round trips per burst, not per message.
/// Messages to the same room keep the order of `reqs`.
pub async fn post_many(state: &AppState, reqs: Vec<PostRequest>) -> Vec<Result<Appended>> {
    let mut rooms: Vec<(Uuid, Uuid)> = Vec::new();
    for r in &reqs {
        if !rooms.contains(&(r.tenant, r.conversation_id)) {
            rooms.push((r.tenant, r.conversation_id));
        }
    }
    // The room check and the membership (the author check, channel deliveries) in one round
    // of I/O; both usually from the node's cache (`Store::cached_conversation`,
    // `Store::members`), with no I/O at all. A close, resolve or snooze made on another node a
    // moment ago is still exact: the Redis append checks and returns the status itself.
    let reads = futures_util::future::join_all(rooms.iter().map(|&(tenant, id)| {
        let authors: Vec<Uuid> = reqs
            .iter()
            .filter(|r| r.conversation_id == id)
            .filter_map(|r| match &r.author {
                Author::Participant(p) => Some(p.id),
                Author::Api => None,
            })
            .collect();
        let known = reqs.iter().find(|r| r.conversation_id == id && r.tenant == tenant).and_then(|r| r.room.clone());
        async move {
            let (c, mut participants) = match known {
                Some(room) => room,
                None => read_room(state, tenant, id).await?.ok_or(Error::NotFound("conversation"))?,
            };
            // A closed conversation keeps its history and takes nothing more.
            if c.lifecycle.status == crate::model::ConversationStatus::Closed {
                return Err(super::status::closed());
            }
            // An author the cache does not know may have joined on another node a moment ago
            // (its publication still on the way): the store decides before anyone is refused.
            if authors.iter().any(|a| !participants.iter().any(|p| p.id == *a)) {
                participants = state.store.list_participants(id).await?.into();
            }
            Ok::<_, Error>((c, participants))
        }
    }))
    .await;
    let mut outcomes: Vec<Result<usize>> = Vec::with_capacity(reqs.len());
    let mut drafts = Vec::new();
    let mut tenants = Vec::new();
    // Per draft: the index of its room in `rooms` / `reads`.
    let mut draft_rooms = Vec::new();
    // Per draft: its `message.created` when a webhook wants it, and whether the append writes
    // it to the webhook outbox itself (in the same step as the message).
    let mut hooked: Vec<Option<Hooked>> = Vec::new();
    for req in reqs {
        let i = rooms.iter().position(|r| *r == (req.tenant, req.conversation_id)).unwrap_or(0);
        let tenant = req.tenant;
        let draft = match &reads[i] {
            Ok((_, participants)) => draft(state, req, participants).await,
            Err(e) => Err(e.clone()),
        };
        outcomes.push(draft.map(|mut d| {
            let ev = crate::webhooks::wanted(state, tenant, EventKind::MessageCreated)
                .then(|| Event::new(EventKind::MessageCreated, tenant, Some(d.message.conversation_id), ()));
            if let Some(ev) = &ev
                && state.store.queues_webhook_events()
            {
                d.webhook_event = crate::webhooks::open_outbox_event(ev);
            }
            hooked.push(ev.map(|ev| (ev, d.webhook_event.is_some())));
            drafts.push(d);
            tenants.push(tenant);
            draft_rooms.push(i);
            drafts.len() - 1
        }));
    }
    let mut appended: Vec<Option<Result<Appended>>> =
        state.store.append_many(drafts).await.into_iter().map(Some).collect();
    // The event carries each message as the store wrote it: no second serialization.
    let jsons: Vec<Option<Utf8Bytes>> =
        appended.iter().map(|r| r.as_ref().and_then(|r| r.as_ref().ok()).and_then(|a| a.json.clone())).collect();
    let created: Vec<(Uuid, &Message, Option<Hooked>, Option<Utf8Bytes>)> = appended
        .iter()
        .zip(&tenants)
        .zip(hooked)
        .zip(jsons)
        .filter_map(|(((r, &tenant), hooked), json)| match r {
            Some(Ok(a)) if !a.duplicate => Some((tenant, &a.message, hooked, json)),
            _ => None,
        })
        .collect();
    // The burst's deliveries go to the outbox together: one write, not one per message.
    dispatch::enqueue(state, created.iter().map(|(t, m, _, _)| (*t, *m))).await;
    let mut events = Vec::with_capacity(created.len());
    let mut unqueued = Vec::new();
    for (tenant, m, hooked, json) in created {
        let data = json.map_or_else(|| EventData::of(m), EventData::from_json);
        let ev = match hooked {
            Some((mut ev, queued)) => {
                ev.data = data;
                if !queued {
                    unqueued.push(ev.clone());
                }
                ev
            }
            None => Event::with_data(EventKind::MessageCreated, tenant, Some(m.conversation_id), data),
        };
        events.push(ev);
    }
    if state.store.queues_webhook_events() {
        state.webhooks.wake();
    }
    // Where the append could not write them (memory, cluster): into the outbox before the ack.
    if let Err(e) = crate::webhooks::record(state, &unqueued).await {
        tracing::warn!(error = %e, count = unqueued.len(), "message.created not queued for webhooks");
    }
    for ev in events {
        announce(state, ev).await;
    }
    // Each room's `resolve_after` counts from its newest message.
    for (r, read) in rooms.iter().zip(&reads) {
        let mut newest = appended.iter().flatten().filter_map(|a| a.as_ref().ok()).filter(|a| !a.duplicate);
        if let (Ok((c, _)), Some(m)) = (read, newest.rfind(|a| a.message.conversation_id == r.1)) {
            super::status::touched(state, c, m.message.tm_create).await;
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            let i = o?;
            let mut a =
                appended.get_mut(i).and_then(Option::take).unwrap_or_else(|| Err(Error::internal("no outcome")))?;
            // The status the append found (Redis) wins over the one read before it.
            let read = reads.get(draft_rooms[i]).and_then(|r| r.as_ref().ok()).map(|(c, _)| c.lifecycle.status);
            let status = a.status.or(read);
            a.reopens = !a.duplicate
                && matches!(
                    status,
                    Some(crate::model::ConversationStatus::Resolved | crate::model::ConversationStatus::Snoozed)
                );
            Ok(a)
        })
        .collect()
}

/// Runs the validation and the intercept webhooks (`message.creating`) on `req` before its
/// room exists — an inbound channel's first message, whose room, participant and binding are
/// created only once the message is allowed, so a rejected one leaves nothing (no events
/// either). `participants` are the room's members-to-be; the draft carries the ids reserved
/// for the room. On `Ok`, `req` holds the verdict (a modified text or medias) and is marked
/// screened, so `post` does not intercept it a second time.
pub async fn screen(state: &AppState, req: &mut PostRequest, participants: &[Participant]) -> Result<()> {
    let d = draft(state, PostRequest { screened: false, ..req.clone() }, participants).await?;
    req.text = d.message.text;
    req.medias = d.message.medias;
    req.screened = true;
    Ok(())
}

/// Checks one request against its room's participants and builds the draft (intercept
/// webhooks included: they may reject it or change its content).
async fn draft(state: &AppState, mut req: PostRequest, participants: &[Participant]) -> Result<Draft> {
    if req.medias.len() <= state.config.limits.max_medias {
        crate::media::attach::resolve(state, req.tenant, req.conversation_id, &mut req.medias).await?;
    }
    validate(state, &req)?;
    let channel = match &req.author {
        Author::Api => None,
        Author::Participant(p) => Some(req.via.as_ref().map_or(p.address.kind, |e| e.address.kind)),
    };
    let (author, direction, status, scope) = match &req.author {
        Author::Api => (None, Direction::Outbound, MessageStatus::Sent, "api".to_string()),
        Author::Participant(p) => {
            // Checked against the list read for this post, not the author as the caller cached
            // it: a connection may still hold a participant that was removed meanwhile.
            if p.conversation_id != req.conversation_id || !participants.iter().any(|x| x.id == p.id) {
                return Err(Error::Forbidden("author is not a participant of this conversation".into()));
            }
            (Some(p.id), Direction::Inbound, MessageStatus::Received, p.id.to_string())
        }
    };
    // A private note never leaves the hub: no channel participant gets it.
    let deliveries = if req.visibility.is_public() {
        let lift = super::window::Lift::of(state, &req, participants).await?;
        let planned = dispatch::plan(participants, author, req.send_via, &|e| lift.lifts(e));
        super::window::check(&req, &planned, participants)?;
        planned
    } else {
        Vec::new()
    };
    let status =
        if direction == Direction::Outbound && !deliveries.is_empty() { MessageStatus::Queued } else { status };
    let idempotency_key = req.client_id.as_ref().map(|c| format!("{scope}:{c}"));
    let mut message = Message {
        id: Uuid::now_v7(),
        conversation_id: req.conversation_id,
        seq: 0,
        author,
        direction,
        text: req.text,
        medias: req.medias,
        status,
        client_id: req.client_id,
        tm_create: now(),
        channel,
        deliveries,
        via: match &req.author {
            // The account and address it came in on (a channel participant's, or the linked
            // endpoint it wrote from); webchat and API posts have none.
            Author::Participant(p) => req
                .via
                .clone()
                .or_else(|| p.account_id.map(|a| Endpoint { address: p.address.clone(), account_id: Some(a) })),
            Author::Api => None,
        },
        visibility: req.visibility,
        edited_at: None,
        deleted_at: None,
        template: req.template,
        tag: req.tag,
    };
    // Customer intercept webhooks may reject (422, nothing stored) or modify the draft.
    if !req.screened {
        crate::webhooks::intercept(state, req.tenant, &message).await?.apply(&mut message.text, &mut message.medias);
    }
    Ok(Draft { message, idempotency_key, webhook_event: None })
}

fn validate(state: &AppState, req: &PostRequest) -> Result<()> {
    let limits = &state.config.limits;
    if req.text.trim().is_empty() && req.medias.is_empty() {
        return Err(Error::invalid("empty_message", "a message needs text or at least one media"));
    }
    if req.text.len() > limits.max_text_bytes {
        return Err(Error::PayloadTooLarge(format!("text is longer than {} bytes", limits.max_text_bytes)));
    }
    if req.medias.len() > limits.max_medias {
        return Err(Error::invalid("too_many_medias", format!("at most {} medias per message", limits.max_medias)));
    }
    for m in &req.medias {
        if !(m.url.starts_with("https://") || m.url.starts_with("http://")) || m.url.len() > 2048 {
            return Err(Error::invalid("invalid_media", "media url must be an http(s) URL of at most 2048 bytes"));
        }
        if m.content_type.len() > 255 {
            return Err(Error::invalid("invalid_media", "media content_type is too long"));
        }
        if let Some(p) = &m.preview_url
            && (!(p.starts_with("https://") || p.starts_with("http://")) || p.len() > 2048)
        {
            return Err(Error::invalid(
                "invalid_media",
                "media preview_url must be an http(s) URL of at most 2048 bytes",
            ));
        }
    }
    if let Some(c) = &req.client_id
        && (c.is_empty() || c.len() > MAX_CLIENT_ID)
    {
        return Err(Error::invalid("invalid_client_id", format!("client_id must be 1 to {MAX_CLIENT_ID} bytes")));
    }
    Ok(())
}
