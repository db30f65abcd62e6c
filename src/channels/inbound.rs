//! `/v1.0/hooks/{provider}/{account_id}`: provider webhooks into rooms — the one inbound door
//! of every provider, email included (its `/hooks/email/…` route is this same handler).
//!
//! Order matters: find the account, **verify the signature before anything else** (a bad one
//! is a 403 and nothing is stored), parse, then for each message find its room — the room of
//! the thread it answers when the provider threads (email), else the one bound to
//! `(account, peer address)`, creating conversation and participant through `conversations`
//! (events included) when there is none — and post through the one write path with the
//! provider's message id as the idempotency key, so a provider retrying a webhook never
//! creates a second message. A new peer's first message meets the intercept webhooks
//! *before* its room exists (`conversations::screen`, with the ids reserved for the room): a
//! rejected one leaves nothing behind — no room, participant, binding, event or watcher frame.
//! A text over `limits.max_text_bytes` is cut, never refused (a provider retries a refusal
//! forever). Status reports update the delivery they name. A
//! backend failure answers 503 so the provider retries later.

use super::{HookRequest, InboundMessage, dispatch};
use crate::app::AppState;
use crate::conversations::{self, Author, ContactOf, NewParticipant, PostRequest};
use crate::error::{Error, Path, Result};
use crate::model::{Account, Address, ConversationStatus, Endpoint, MatchMode, Participant};
use crate::store::{Binding, DeliveryRef};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::time::Duration;
use uuid::Uuid;

/// The URL the provider called, as it saw it (Twilio signs it).
fn public_url(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let base = &state.config.server.public_url;
    if !base.is_empty() {
        return format!("{}{path}", base.trim_end_matches('/'));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}{path}")
}

/// Handles GET (verification handshakes) and POST (events) for every provider.
pub async fn hook(
    State(state): State<AppState>,
    Path((provider, account_id)): Path<(String, Uuid)>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    handle(&state, &provider, account_id, method, &uri, headers, body).await
}

/// `POST /v1.0/hooks/email/{account_id}` and `/hooks/smtp/{account_id}`: the shared handler
/// for provider `smtp` (the inbound-parse POST of an email; see `email::hook`).
pub async fn email_hook(
    State(state): State<AppState>,
    Path(account_id): Path<Uuid>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    handle(&state, crate::model::ProviderKind::Smtp.as_str(), account_id, method, &uri, headers, body).await
}

/// [`hook`] for `provider`: also the handler of routes that name the provider themselves.
pub async fn handle(
    state: &AppState,
    provider: &str,
    account_id: Uuid,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let p = state.channels.by_name(provider).ok_or(Error::NotFound("provider"))?;
    let account = state
        .accounts
        .get(state.channel_store.as_ref(), account_id)
        .await?
        .filter(|a| a.provider == p.kind())
        .ok_or(Error::NotFound("account"))?;
    if let Err(e) = state.limits.provider.check(&account.id.to_string()) {
        state.metrics.rate_limited("provider");
        return Err(e);
    }
    let query = uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let req = HookRequest { method, url: public_url(state, &headers, uri), headers, query, body };
    if let Err(e) = p.verify(&account, &req) {
        tracing::warn!(provider = %provider, account = %account.id, "webhook signature refused");
        return Err(e);
    }
    let inbound = p.parse(&account, &req).await?;
    if let Some(challenge) = inbound.challenge {
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], challenge).into_response());
    }
    for m in inbound.messages {
        receive(state, &account, m).await?;
    }
    for s in &inbound.statuses {
        dispatch::on_status(state, account.tenant_id, account.id, s).await;
    }
    let reply = p.reply();
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, reply.content_type)], reply.body).into_response())
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn clip(s: &mut String, max: usize) {
    if s.len() > max {
        let cut = (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
    }
}

/// Posts one inbound message into its room.
pub async fn receive(state: &AppState, account: &Account, m: InboundMessage) -> Result<()> {
    receive_in(state, account, m, false).await
}

/// `receive`; `again` when the peer's room turned out closed and this is the retry that opens
/// a new one.
async fn receive_in(state: &AppState, account: &Account, mut m: InboundMessage, again: bool) -> Result<()> {
    let original = m.clone();
    // One spelling per phone number, so the sender's binding is found however the provider
    // wrote it. A sender that is no valid number (a short code, an alphanumeric sender id) is
    // kept as written: refusing it would only make the provider retry.
    if crate::phone::is_phone(m.from.kind) {
        m.from.target = crate::phone::for_sender(account, &m.from.target);
    }
    // A provider retries until we accept, so an over-long text is cut rather than refused.
    let mut text = std::mem::take(&mut m.text);
    let mut medias = std::mem::take(&mut m.medias);
    let provider_medias = super::inbound_media::sources(&medias);
    super::media::resolve(state, account, &mut medias);
    // Files carried in the webhook (email attachments) are stored before the post; whatever
    // stops the message from being kept below deletes them again.
    let room = state.config.limits.max_medias.saturating_sub(medias.len());
    let files = std::mem::take(&mut m.files);
    let (stored, notes) = super::inbound_media::store_files(state, account.tenant_id, files, room).await?;
    for n in notes {
        text = if text.is_empty() { n } else { format!("{text}\n{n}") };
    }
    clip(&mut text, state.config.limits.max_text_bytes);
    medias.extend(stored.iter().cloned());
    let mut kept = false;
    let posted = post_in(state, account, (m, original), text, medias, provider_medias, again, &mut kept).await;
    if !kept {
        super::inbound_media::forget_stored(state, &stored).await;
    }
    posted
}

/// The rest of [`receive_in`]: routes and posts the message; sets `kept` once it is stored as
/// a new message (not a duplicate, nor handed to a retry in a new room).
#[allow(clippy::too_many_arguments)]
async fn post_in(
    state: &AppState,
    account: &Account,
    (m, original): (InboundMessage, InboundMessage),
    text: String,
    medias: Vec<crate::model::Media>,
    provider_medias: Vec<(usize, super::inbound_media::Source)>,
    again: bool,
    kept: &mut bool,
) -> Result<()> {
    let (mut text, mut medias) = (text, medias);
    let client_id: String = format!("{}:{}", account.provider, m.provider_message_id).chars().take(128).collect();
    let (conversation, participant, opened, screened) = match route(state, account, &m).await? {
        Some(room) => (room.id, room.participant, room.opened, false),
        None => {
            // A new peer: the intercept webhooks rule before anything exists, so a rejected
            // first message creates no room, participant, binding or event. The draft they
            // see carries the ids reserved for the room.
            let b = Binding { conversation_id: Uuid::now_v7(), participant_id: Uuid::now_v7() };
            let p = Participant {
                id: b.participant_id,
                conversation_id: b.conversation_id,
                tenant_id: account.tenant_id,
                address: m.from.clone(),
                account_id: Some(account.id),
                linked: Vec::new(),
                reply_via: None,
                contact_id: None,
                last_read_seq: 0,
                tm_create: crate::model::now(),
                data: Default::default(),
            };
            let mut req = request(account, &m, &p, client_id.clone(), text, medias);
            conversations::screen(state, &mut req, std::slice::from_ref(&p)).await?;
            (text, medias) = (req.text, req.medias);
            let name = m.thread.as_ref().map_or("", |t| t.subject.as_str());
            let room = resolve_room(state, account, &m.from, name, Some(b), None).await?;
            (room.id, room.participant, room.opened, true)
        }
    };
    let endpoint = Endpoint { address: m.from.clone(), account_id: Some(account.id) };
    let req = PostRequest { screened, ..request(account, &m, &participant, client_id, text, medias) };
    let appended = match conversations::post(state, req).await {
        Ok(a) => a,
        Err(e) if e.code() == "closed" && !opened && !again => {
            // The peer's room was closed: it takes nothing more, and the message opens a new
            // room (the room's status came with the post's own room read: no extra trip).
            state.channel_store.unbind(account.id, &m.from, conversation).await?;
            return Box::pin(receive_in(state, account, original, true)).await;
        }
        Err(e) => {
            // A room opened for a message that is then refused anyway (screened, but refused
            // by the post path: e.g. the room changed meanwhile) is removed again. A backend
            // failure keeps the room for the retry.
            if opened && e.status().is_client_error() {
                abandon(state, account, conversation).await;
            }
            return Err(e);
        }
    };
    *kept = !appended.duplicate;
    if appended.duplicate {
        state.metrics.inbound_duplicate(account.provider.as_str());
    } else {
        state.metrics.message_posted(crate::metrics::Entry::Provider);
        // Provider media are copied into storage in the background (a retried webhook is a
        // duplicate: no second copy).
        let job = super::inbound_media::Job {
            tenant: account.tenant_id,
            account: account.id,
            conversation,
            message: appended.message.id,
            items: provider_medias,
            attempt: 0,
            not_before_ms: 0,
            token: None,
        };
        super::inbound_rehost::enqueue(state, job).await;
        // A resolved or snoozed room opens again when the peer writes (the status came with
        // the post's room read: an open room costs no extra round trip).
        if appended.reopens
            && let Err(e) = conversations::status::reopen(state, account.tenant_id, conversation).await
        {
            tracing::warn!(error = %e.chain(), %conversation, "conversation not reopened");
        }
    }
    let mut p = participant;
    let mut changed = false;
    if let Some(thread) = m.thread {
        // Indexed so a message answering this one finds the room; also on a duplicate, so a
        // retried webhook repairs what a failure below left undone.
        let r = DeliveryRef { conversation_id: conversation, message_id: appended.message.id, participant_id: p.id };
        state.channel_store.put_provider_ref(account.id, &m.provider_message_id, r).await?;
        if let Some((key, value)) = thread.participant_data {
            p.data.insert(key, value);
            changed = true;
        }
    }
    // Replies follow the person to the channel they last wrote from.
    let current = p.reply_endpoint();
    if !(current.address.same_endpoint(&endpoint.address) && current.account_id == endpoint.account_id) {
        p.reply_via = Some(endpoint);
        changed = true;
    }
    if changed {
        state.channel_store.update_participant(&p).await?;
    }
    Ok(())
}

/// The post request for `m` by `participant` (in `participant`'s room).
fn request(
    account: &Account,
    m: &InboundMessage,
    participant: &Participant,
    client_id: String,
    text: String,
    medias: Vec<crate::model::Media>,
) -> PostRequest {
    let via = (!(participant.address.same_endpoint(&m.from) && participant.account_id == Some(account.id)))
        .then(|| Endpoint { address: m.from.clone(), account_id: Some(account.id) });
    PostRequest {
        tenant: account.tenant_id,
        conversation_id: participant.conversation_id,
        author: Author::Participant(Box::new(participant.clone())),
        text,
        medias,
        client_id: Some(client_id),
        via,
        screened: false,
        send_via: None,
        visibility: Default::default(),
    }
}

/// Removes a room opened for a message that was then refused — unless another message made it
/// in meanwhile (the same peer writing again concurrently), which keeps it.
async fn abandon(state: &AppState, account: &Account, conversation: Uuid) {
    let result = match conversations::get(state, account.tenant_id, conversation).await {
        Ok(c) if c.last_seq == 0 => conversations::delete(state, account.tenant_id, conversation).await.map(|_| ()),
        Ok(_) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(err) = result {
        tracing::warn!(error = %err, %conversation, "room of a refused first message not removed");
    }
}

/// The room of the thread `m` answers, if we know one and the sender can take part there;
/// else the sender's own room, if it has one; `None` for a new peer. `true`: the room was
/// opened for this message (its binding vanished meanwhile).
async fn route(state: &AppState, account: &Account, m: &InboundMessage) -> Result<Option<Room>> {
    let (replies_to, name) = m.thread.as_ref().map_or((&[][..], ""), |t| (&t.replies_to[..], t.subject.as_str()));
    for id in replies_to {
        if let Some(r) = state.channel_store.provider_ref(account.id, id).await? {
            let status = status(state, account, r.conversation_id).await?;
            if status == Some(ConversationStatus::Closed) {
                break;
            }
            if let Some(p) = seat(state, account, r.conversation_id, &m.from).await? {
                return Ok(Some(Room { id: r.conversation_id, participant: p, opened: false }));
            }
            break;
        }
    }
    let known = state.channel_store.binding(account.id, &m.from).await?;
    if known.is_none()
        && account.match_mode == MatchMode::Contact
        && let Some(room) = contact_room(state, account, &m.from).await?
    {
        return Ok(Some(room));
    }
    let Some(known) = known else { return Ok(None) };
    resolve_room(state, account, &m.from, name, None, Some(known)).await.map(Some)
}

/// Contact matching (`match: contact`): a sender this account has no room for, who is a known
/// contact, joins the contact's most recent conversation that is not closed — its address
/// becomes a link of the contact's participant there (bound, so the next message goes
/// straight there). `None`: no such contact or conversation; the caller opens a room.
async fn contact_room(state: &AppState, account: &Account, from: &Address) -> Result<Option<Room>> {
    let tenant = account.tenant_id;
    let Some(contact) = conversations::contacts::lookup(state, tenant, from).await? else { return Ok(None) };
    for c in conversations::contacts::conversations(state, tenant, contact, None, 20).await? {
        if c.lifecycle.status == ConversationStatus::Closed {
            continue;
        }
        let members = state.store.list_participants(c.id).await?;
        let Some(p) = members.into_iter().find(|p| p.contact_id == Some(contact)) else { continue };
        return match conversations::link_endpoint(state, tenant, c.id, p.id, from.clone(), Some(account.id)).await {
            Ok(p) => Ok(Some(Room { id: c.id, participant: p, opened: false })),
            // Bound elsewhere meanwhile (a racing message), or a sender no number can be
            // made of: the ordinary path takes it from here.
            Err(Error::Conflict(_) | Error::Unprocessable { .. } | Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        };
    }
    Ok(None)
}

/// The sender's participant in `conversation`, added (and bound) if it is not there yet;
/// `None` when it cannot be: the room is gone, or the sender is bound to another room.
async fn seat(state: &AppState, account: &Account, conversation: Uuid, from: &Address) -> Result<Option<Participant>> {
    if let Some(p) = conversations::member(state, conversation, from.kind, &from.target).await? {
        return Ok(Some(p));
    }
    let new = NewParticipant {
        id: None,
        address: from.clone(),
        account_id: Some(account.id),
        as_sent: true,
        contact: ContactOf::Auto,
    };
    match conversations::add_participant(state, account.tenant_id, conversation, new).await {
        Ok(p) => Ok(Some(p)),
        Err(Error::Conflict(_) | Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A sender's room as the inbound door resolved it.
#[derive(Debug)]
pub struct Room {
    pub id: Uuid,
    pub participant: Participant,
    /// This call opened the room.
    pub opened: bool,
}

/// The room and participant for `peer` on `account`, created when there is none (named
/// `name`, or after the peer when that is empty, with the ids `reserved` when given).
/// `known` is the peer's binding when the caller just read it (saves reading it again).
///
/// Race-free across nodes: the ids are reserved in the binding index (create-if-absent) before
/// the conversation exists; whoever loses the race uses the winner's room, waiting briefly
/// for the winner to finish creating it.
pub async fn resolve_room(
    state: &AppState,
    account: &Account,
    peer: &Address,
    name: &str,
    mut reserved: Option<Binding>,
    mut known: Option<Binding>,
) -> Result<Room> {
    let store = &state.channel_store;
    for attempt in 0..20 {
        let binding = match known.take() {
            Some(b) => Some(b),
            // The caller just found none and brings the ids to reserve: straight to the
            // create-if-absent below, which still catches a sender racing this one.
            None if attempt == 0 && reserved.is_some() => None,
            None => store.binding(account.id, peer).await?,
        };
        if let Some(b) = binding {
            // A closed room is found out by the post (see `receive_in`), not read here.
            match conversations::participant(state, b.conversation_id, b.participant_id).await {
                Ok(p) => return Ok(Room { id: b.conversation_id, participant: p, opened: false }),
                Err(Error::NotFound(_)) if attempt < 19 => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    continue;
                }
                Err(Error::NotFound(_)) => {
                    // A binding left behind by a room that never finished; take it over.
                    store.unbind(account.id, peer, b.conversation_id).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let b = reserved
            .take()
            .unwrap_or_else(|| Binding { conversation_id: Uuid::now_v7(), participant_id: Uuid::now_v7() });
        if store.bind(account.id, peer, b).await?.is_some() {
            continue;
        }
        let (id, participant) = open_room(state, account, peer, name, b).await?;
        return Ok(Room { id, participant, opened: true });
    }
    Err(Error::unavailable("could not resolve the conversation for this sender; retry"))
}

/// The status of `conversation`; `None` when it is gone (the caller finds out).
async fn status(state: &AppState, account: &Account, conversation: Uuid) -> Result<Option<ConversationStatus>> {
    match conversations::get(state, account.tenant_id, conversation).await {
        Ok(c) => Ok(Some(c.lifecycle.status)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn open_room(
    state: &AppState,
    account: &Account,
    peer: &Address,
    name: &str,
    b: Binding,
) -> Result<(Uuid, Participant)> {
    let mut name = [name, peer.name.as_str(), peer.target.as_str()]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_default()
        .to_string();
    // A name the limits refuse would fail the webhook, which the provider retries forever.
    clip(&mut name, state.config.limits.max_name_bytes);
    let detail = format!("{} via {}", peer.kind.as_str(), account.name);
    let metadata = serde_json::json!({"source": {"account_id": account.id, "provider": account.provider}});
    let t = account.tenant_id;
    conversations::create_with_id(state, b.conversation_id, t, name, detail, metadata).await?;
    // The binding already names this participant, so adding it re-binds to the same target.
    let new = NewParticipant {
        id: Some(b.participant_id),
        address: peer.clone(),
        account_id: Some(account.id),
        as_sent: true,
        contact: ContactOf::Auto,
    };
    let p = conversations::add_participant(state, t, b.conversation_id, new).await?;
    crate::agents::auto_assign(state, t, b.conversation_id).await;
    Ok((b.conversation_id, p))
}
