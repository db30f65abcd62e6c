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
//! forever). Status reports update the delivery they name, read receipts the peer's read
//! marker. A backend failure answers 503 so the provider retries later. Finding and opening
//! the room is `inbound_room.rs`.

use super::inbound_room::{resolve_room, route};
use super::{HookRequest, InboundMessage, dispatch};
use crate::app::AppState;
use crate::conversations::{self, Author, PostRequest};
use crate::error::{Error, Path, Result};
use crate::model::{Account, Endpoint, Participant};
use crate::store::{Binding, DeliveryRef};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
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
    for r in &inbound.reads {
        dispatch::on_read(state, account.id, r).await;
    }
    let reply = p.reply();
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, reply.content_type)], reply.body).into_response())
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(super) fn clip(s: &mut String, max: usize) {
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
    (mut m, original): (InboundMessage, InboundMessage),
    text: String,
    medias: Vec<crate::model::Media>,
    provider_medias: Vec<(usize, super::inbound_media::Source)>,
    again: bool,
    kept: &mut bool,
) -> Result<()> {
    let (mut text, mut medias) = (text, medias);
    let client_id: String = format!("{}:{}", account.provider, m.provider_message_id).chars().take(128).collect();
    let (conversation, participant, opened, screened, read) = match route(state, account, &m).await? {
        Some(room) => (room.id, room.participant, room.opened, false, room.read),
        None => {
            // Messenger and Instagram name nobody: a new peer's name is asked for once.
            if m.from.name.is_empty()
                && let Some(p) = state.channels.get(account.provider)
                && let Some(name) = p.profile_name(&state.http, account, &m.from.target).await
            {
                m.from.name = name;
            }
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
                window_expires_at: None,
            };
            let mut req = request(account, &m, &p, client_id.clone(), text, medias);
            conversations::screen(state, &mut req, std::slice::from_ref(&p)).await?;
            (text, medias) = (req.text, req.medias);
            let name = m.thread.as_ref().map_or("", |t| t.subject.as_str());
            let room = resolve_room(state, account, &m.from, name, Some(b), None).await?;
            (room.id, room.participant, room.opened, true, room.read)
        }
    };
    let endpoint = Endpoint { address: m.from.clone(), account_id: Some(account.id) };
    let req = PostRequest { screened, room: read, ..request(account, &m, &participant, client_id, text, medias) };
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
    // The customer-service window counts from this message (before `reply_via` moves).
    changed |= conversations::window::after_inbound(&mut p, &endpoint, m.sent_at);
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
        template: None,
        tag: None,
        room: None,
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
