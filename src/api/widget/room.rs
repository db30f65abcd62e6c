//! `POST /v1.0/widget/messages`: a visitor's message that may have to open (or re-open) the
//! room — the first one, or one written after the conversation was resolved or closed.
//!
//! Why its own door: a page view must not create a conversation, and a client token names its
//! conversations when it is minted, so the token of a visitor without a room cannot send.
//! This endpoint resolves the room and posts in one request, and answers a client token that
//! includes the room; the widget then subscribes with the JS client, which carries every
//! later message over the WebSocket.
//!
//! The room follows the account's matching rules, like an inbound channel message: the room
//! bound to `(account, visitor)`; with `match: contact`, else the contact's latest conversation
//! that is not closed; else a new one (race-free: the ids are reserved in the binding index,
//! create-if-absent, before the conversation exists). A resolved or snoozed room opens again;
//! a closed one takes nothing more, so the message starts a new room.

use super::session::{VisitorConversation, people};
use super::{address, admit};
use crate::app::AppState;
use crate::conversations::{self, Author, ContactOf, NewParticipant, PostRequest};
use crate::error::{Error, ErrorBody, Json, Result};
use crate::model::{Account, Address, ConversationStatus, MatchMode, Media, Message, Participant};
use crate::store::Binding;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetMessage {
    pub key: String,
    /// From `POST /v1.0/widget/sessions`.
    pub visitor_token: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub medias: Vec<Media>,
    /// Retry key: the same one again answers the original message.
    pub client_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WidgetMessageResponse {
    pub message: Message,
    pub conversation: VisitorConversation,
    /// A client token scoped to the conversation: subscribe with it.
    pub token: String,
    pub token_expires_at: u64,
}

#[utoipa::path(post, path = "/v1.0/widget/messages", tag = "widget", request_body = WidgetMessage,
    responses((status = 201, body = WidgetMessageResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<WidgetMessage>,
) -> Result<(StatusCode, Json<WidgetMessageResponse>)> {
    let account = admit(&state, &b.key, &headers, &peer).await?;
    let claims = super::visitor(&state, &account, &b.visitor_token)?
        .ok_or_else(|| Error::Unauthorized("visitor_token has expired: open a new session".into()))?;
    let identity = claims.sub;
    let tenant = account.tenant_id;
    let contact = conversations::contacts::for_address(&state, tenant, &address(&identity, ""))
        .await?
        .ok_or_else(|| Error::internal("a webchat address always has a contact"))?;
    let name = conversations::contacts::get(&state, tenant, contact).await?.name;
    let me = address(&identity, &name);
    let mut again = false;
    let appended = loop {
        let p = seat(&state, &account, &me, contact).await?;
        let req = PostRequest {
            tenant,
            conversation_id: p.conversation_id,
            author: Author::Participant(Box::new(p.clone())),
            text: b.text.clone(),
            medias: b.medias.clone(),
            client_id: b.client_id.clone(),
            via: None,
            send_via: None,
            screened: false,
            visibility: Default::default(),
            template: None,
            tag: None,
            room: None,
        };
        match conversations::post(&state, req).await {
            Ok(a) => break a,
            Err(e) if e.code() == "closed" && !again => {
                // Closed since we looked: it takes nothing more; the message opens a new room.
                state.channel_store.unbind(account.id, &me, p.conversation_id).await?;
                again = true;
            }
            Err(e) => return Err(e),
        }
    };
    let room = appended.message.conversation_id;
    if appended.reopens
        && let Err(e) = conversations::status::reopen(&state, tenant, room).await
    {
        tracing::warn!(error = %e.chain(), conversation = %room, "conversation not reopened");
    }
    let c = conversations::get(&state, tenant, room).await?;
    let conversation = VisitorConversation {
        id: room,
        status: c.lifecycle.status,
        people: people(&state, &account, room, &identity).await?,
    };
    let (token, token_expires_at) = super::client_token(&state, tenant, &identity, vec![room]);
    Ok((
        StatusCode::CREATED,
        Json(WidgetMessageResponse { message: appended.message, conversation, token, token_expires_at }),
    ))
}

/// The visitor's participant in the room this message goes to, opening the room if needed.
async fn seat(state: &AppState, account: &Account, me: &Address, contact: Uuid) -> Result<Participant> {
    let store = &state.channel_store;
    for _ in 0..20 {
        if let Some(b) = store.binding(account.id, me).await? {
            match conversations::get(state, account.tenant_id, b.conversation_id).await {
                Ok(c) if c.lifecycle.status != ConversationStatus::Closed => {
                    match conversations::participant(state, b.conversation_id, b.participant_id).await {
                        Ok(p) => return Ok(p),
                        // The room is still being opened by a racing request: look again.
                        Err(Error::NotFound(_)) => {
                            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(_) | Err(Error::NotFound(_)) => {
                    store.unbind(account.id, me, b.conversation_id).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if account.match_mode == MatchMode::Contact
            && let Some(p) = contact_room(state, account, me, contact).await?
        {
            return Ok(p);
        }
        let b = Binding { conversation_id: Uuid::now_v7(), participant_id: Uuid::now_v7() };
        if store.bind(account.id, me, b).await?.is_some() {
            continue;
        }
        return open(state, account, me, contact, b).await;
    }
    Err(Error::unavailable("could not resolve the visitor's conversation; retry"))
}

/// `match: contact`: the contact's most recent conversation that is not closed, the visitor
/// seated (and bound) there.
async fn contact_room(state: &AppState, account: &Account, me: &Address, contact: Uuid) -> Result<Option<Participant>> {
    let tenant = account.tenant_id;
    for c in conversations::contacts::conversations(state, tenant, contact, None, 20).await? {
        if c.lifecycle.status == ConversationStatus::Closed {
            continue;
        }
        let p = match conversations::member(state, c.id, me.kind, &me.target).await? {
            Some(p) => p,
            None => {
                let new = NewParticipant {
                    id: None,
                    address: me.clone(),
                    account_id: None,
                    as_sent: false,
                    contact: ContactOf::Is(contact),
                };
                conversations::add_participant(state, tenant, c.id, new).await?
            }
        };
        let b = Binding { conversation_id: c.id, participant_id: p.id };
        return match state.channel_store.bind(account.id, me, b).await? {
            None => Ok(Some(p)),
            Some(_) => Ok(None),
        };
    }
    Ok(None)
}

/// A new room for the visitor with the reserved ids `b`.
async fn open(state: &AppState, account: &Account, me: &Address, contact: Uuid, b: Binding) -> Result<Participant> {
    let t = account.tenant_id;
    let name = if me.name.is_empty() { "Website visitor".to_string() } else { me.name.clone() };
    let detail = format!("website chat via {}", account.name);
    let metadata = serde_json::json!({"source": {"account_id": account.id, "provider": account.provider}});
    let created = async {
        conversations::create_with_id(state, b.conversation_id, t, name, detail, metadata).await?;
        let new = NewParticipant {
            id: Some(b.participant_id),
            address: me.clone(),
            account_id: None,
            as_sent: false,
            contact: ContactOf::Is(contact),
        };
        conversations::add_participant(state, t, b.conversation_id, new).await
    }
    .await;
    match created {
        Ok(p) => {
            crate::agents::auto_assign(state, t, b.conversation_id).await;
            Ok(p)
        }
        Err(e) => {
            let _ = state.channel_store.unbind(account.id, me, b.conversation_id).await;
            Err(e)
        }
    }
}
