//! Agents and conversation ownership.
//!
//! A conversation may be owned by one agent (`owner_type = "agent"`, `owner_id` = the agent's
//! identity). Agents hold agent client tokens (`role = "agent"`) and take part in rooms as
//! participants of address type `agent`. The one rule this module enforces everywhere an agent
//! reaches a conversation (REST reads, WebSocket subscribe and send): an agent may act on the
//! conversations assigned to it and on unassigned ones, never on another agent's. Operators
//! (API keys, operator tokens) see everything.
//!
//! The read endpoints (`GET` conversations, one conversation, its messages and participants)
//! take a [`Caller`] instead of an API key alone, so an agent's console can list "my
//! conversations" with the token it already holds for the WebSocket. Of the writes, a token
//! may post a message (`POST …/messages`, as the participant it writes as on the WebSocket:
//! [`token_writer`], [`Caller::writer`]), an agent may change a status and assign the
//! conversations it may act on (to itself, another agent account of the tenant, or nobody:
//! [`check_assignee`]), the rest stays API-key only. An agent token is recognised by verifying it as a client token first;
//! anything that is not one is looked up as an API key, as before.
//!
//! Ownership changes go through [`assign`], so every door gets the same event
//! (`conversation.updated`) and the same live `assigned` frame in the room. [`presence`] knows
//! which agents are available; [`auto_assign`] hands new inbound conversations to them.

pub mod accounts;
pub mod canned;
pub mod presence;
pub mod reads;
pub mod records;
pub mod sessions;

pub use presence::{Presence, Roster};

use crate::app::AppState;
use crate::auth::{ClientClaims, TenantCtx, TokenError};
use crate::conversations;
use crate::error::{Error, Result};
use crate::events::emit;
use crate::model::{Address, AddressType, Conversation, Participant, now};
use crate::store::OwnerFilter;
use crate::wire::{EventKind, Publication, ServerFrame};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

/// Whether the agent `identity` may act on `c`: it owns it, or nobody does.
pub fn visible_to(identity: &str, c: &Conversation) -> bool {
    c.visible_to_agent(identity)
}

/// The WebSocket rule: agent tokens only reach their own and unassigned conversations.
pub fn check_claims(claims: &ClientClaims, c: &Conversation) -> Result<()> {
    if claims.is_agent() && !visible_to(&claims.sub, c) {
        return Err(assigned_elsewhere());
    }
    Ok(())
}

pub(crate) fn assigned_elsewhere() -> Error {
    Error::Forbidden("this conversation is assigned to another agent".into())
}

/// The participant a token writes to `room` as, on the WebSocket (`send`) and REST (`POST
/// …/messages`): the token's scope, the agent rule ([`check_claims`]), and for a scoped token
/// still being a participant; operator and agent tokens join as a participant (`webchat`,
/// `agent`) on their first write.
pub async fn token_writer(state: &AppState, claims: &ClientClaims, room: Uuid) -> Result<Participant> {
    if !claims.may_access(room) {
        return Err(Error::Forbidden("this token does not grant access to that conversation".into()));
    }
    // From the node's room cache: an agent's every burst checks the owner (an assignment
    // anywhere drops the room from every node's cache, see `store::RoomCache`).
    let c = state.store.cached_conversation(claims.tid, room).await?.ok_or(Error::NotFound("conversation"))?;
    check_claims(claims, &c)?;
    join(state, claims.tid, room, claims.address_kind(), &claims.sub, claims.convs.is_some()).await
}

/// The member `identity` of `room`, added now unless `scoped` (a scoped token writes only
/// where it already is a participant).
async fn join(
    state: &AppState,
    tenant: Uuid,
    room: Uuid,
    kind: AddressType,
    identity: &str,
    scoped: bool,
) -> Result<Participant> {
    if let Some(p) = conversations::member(state, room, kind, identity).await? {
        return Ok(p);
    }
    if scoped {
        return Err(Error::Forbidden("you are no longer a participant of this conversation".into()));
    }
    let address = Address { kind, target: identity.to_string(), name: String::new() };
    // Staff (operator and agent tokens) are nobody's contact.
    let new = conversations::NewParticipant {
        id: None,
        address,
        account_id: None,
        as_sent: false,
        contact: conversations::ContactOf::Staff,
    };
    match conversations::add_participant(state, tenant, room, new).await {
        Ok(p) => Ok(p),
        // Another write of the same token joined it first.
        Err(Error::Conflict(_)) => {
            conversations::member(state, room, kind, identity).await?.ok_or(Error::NotFound("participant"))
        }
        Err(e) => Err(e),
    }
}

/// Assigns `id` to `agent`, or unassigns it with `None`; announces the change to outside
/// consumers (`conversation.updated`) and to the room (`assigned` frame).
pub async fn assign(state: &AppState, tenant: Uuid, id: Uuid, agent: Option<String>) -> Result<Conversation> {
    let agent = match agent.map(|a| a.trim().to_string()) {
        Some(a) if a.is_empty() => return Err(Error::invalid("invalid_owner", "owner_id must not be empty")),
        Some(a) => {
            conversations::check_name(state, "owner_id", &a)?;
            Some(a)
        }
        None => None,
    };
    let c = state.store.set_owner(tenant, id, agent.as_deref(), now()).await?.ok_or(Error::NotFound("conversation"))?;
    emit(state, conversations::event(EventKind::ConversationUpdated, tenant, id, &c)).await;
    let frame =
        ServerFrame::Assigned { conversation_id: id, owner_type: c.owner_type, owner_id: c.owner_id.as_deref() };
    let publication = Publication::Assigned { room: id, owner_id: c.owner_id.clone(), frame: frame.to_text() };
    if let Err(e) = state.broker.publish(publication).await {
        tracing::warn!(error = %e.chain(), conversation = %id, "assigned frame not published");
    }
    Ok(c)
}

/// What an agent token may assign to besides itself: an agent account of the tenant (422
/// `unknown_agent` for any other identity, a deleted agent's included). API keys and admin
/// tokens may name any identity, as agents minted with an API key have no account.
pub async fn check_assignee(state: &AppState, tenant: Uuid, identity: &str) -> Result<()> {
    match accounts::by_identity(&*state.records, tenant, identity.trim()).await? {
        Some(_) => Ok(()),
        None => Err(Error::invalid("unknown_agent", format!("`{}` is no agent of this tenant", identity.trim()))),
    }
}

/// With `assignment.auto`, gives a freshly opened conversation to the next available agent
/// (round robin). Never fails the caller: the conversation simply stays unassigned.
pub async fn auto_assign(state: &AppState, tenant: Uuid, conversation: Uuid) {
    if !state.config.assignment.auto {
        return;
    }
    let agent = match state.agents.pick(tenant).await {
        Ok(Some(a)) => a,
        Ok(None) => return tracing::debug!(%conversation, "no agent available; conversation stays unassigned"),
        Err(e) => return tracing::warn!(error = %e.chain(), %conversation, "auto-assignment skipped"),
    };
    if let Err(e) = assign(state, tenant, conversation, Some(agent)).await {
        tracing::warn!(error = %e.chain(), %conversation, "auto-assignment failed");
    }
}

/// The authenticated reader of a REST request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An API key: the whole tenant.
    Operator(crate::model::Tenant),
    /// An agent token: its own and unassigned conversations.
    Agent { tenant: Uuid, identity: String },
    /// A client (end-user or operator chat) token: the messages of the conversations its
    /// WebSocket may subscribe to, nothing else (see `messages_of`).
    Client(ClientClaims),
}

impl Caller {
    pub fn tenant(&self) -> Uuid {
        match self {
            Caller::Operator(t) => t.id,
            Caller::Agent { tenant, .. } => *tenant,
            Caller::Client(c) => c.tid,
        }
    }

    /// The staff identity whose read state this caller carries: an agent token's identity, an
    /// operator (or admin) token's; `None` for API keys and end-user tokens.
    pub fn staff_identity(&self) -> Option<&str> {
        match self {
            Caller::Agent { identity, .. } => Some(identity),
            Caller::Client(c) if c.convs.is_none() => Some(&c.sub),
            _ => None,
        }
    }

    /// Whether the caller sees private notes: API keys, agent and operator tokens do, scoped
    /// end-user tokens do not.
    pub fn sees_internal(&self) -> bool {
        match self {
            Caller::Operator(_) | Caller::Agent { .. } => true,
            Caller::Client(c) => c.sees_internal(),
        }
    }

    /// The list filter for `?owner_id=` (`none` = unassigned). Agents get their own and the
    /// unassigned conversations by default and may narrow that, never widen it.
    pub fn owner_filter(&self, owner_id: Option<&str>) -> Result<OwnerFilter> {
        let asked = match owner_id.map(str::trim) {
            None | Some("") => None,
            Some("none") => Some(OwnerFilter::Unassigned),
            Some(a) => Some(OwnerFilter::Agent(a.to_string())),
        };
        match (self, asked) {
            (Caller::Operator(_), asked) => Ok(asked.unwrap_or(OwnerFilter::Any)),
            (Caller::Client(c), asked) if c.convs.is_none() => Ok(asked.unwrap_or(OwnerFilter::Any)),
            (Caller::Agent { identity, .. }, None) => Ok(OwnerFilter::AgentOrUnassigned(identity.clone())),
            (Caller::Agent { .. }, Some(OwnerFilter::Unassigned)) => Ok(OwnerFilter::Unassigned),
            (Caller::Agent { identity, .. }, Some(OwnerFilter::Agent(a))) if a == *identity => {
                Ok(OwnerFilter::Agent(a))
            }
            (Caller::Agent { .. }, Some(_)) => {
                Err(Error::Forbidden("an agent token lists only its own and unassigned conversations".into()))
            }
            (Caller::Client(_), _) => Err(client_reads_messages_only()),
        }
    }

    /// The conversation, if it exists in the caller's tenant (else 404) and the caller may read
    /// it (else 403: assigned to another agent).
    pub async fn conversation(&self, state: &AppState, id: Uuid) -> Result<Conversation> {
        if let Caller::Client(c) = self
            && c.convs.is_some()
        {
            return Err(client_reads_messages_only());
        }
        let c = conversations::get(state, self.tenant(), id).await?;
        match self {
            Caller::Agent { identity, .. } if !visible_to(identity, &c) => Err(assigned_elsewhere()),
            _ => Ok(c),
        }
    }

    /// The participant the caller posts to `id` as: `None` for an API key (it posts as the API
    /// or names an author); for a token, what its WebSocket `send` would write as
    /// ([`token_writer`]). End-user (scoped) tokens write over the WebSocket only: 403 here.
    pub async fn writer(&self, state: &AppState, id: Uuid) -> Result<Option<Participant>> {
        match self {
            Caller::Operator(_) => Ok(None),
            Caller::Agent { tenant, identity } => {
                // 404 / 403 (another agent's conversation), as for its reads.
                self.conversation(state, id).await?;
                join(state, *tenant, id, AddressType::Agent, identity, false).await.map(Some)
            }
            Caller::Client(c) if c.convs.is_none() => token_writer(state, c, id).await.map(Some),
            Caller::Client(_) => {
                Err(Error::Forbidden("an end-user token posts over the WebSocket; use an API key".into()))
            }
        }
    }

    /// Checks that the caller may read the messages of conversation `id`: what `conversation`
    /// allows, and for client tokens exactly what their WebSocket may subscribe to (in the
    /// token's scope and, for a scoped token, still a participant).
    pub async fn messages_of(&self, state: &AppState, id: Uuid) -> Result<()> {
        let Caller::Client(claims) = self else { return self.conversation(state, id).await.map(|_| ()) };
        if !claims.may_access(id) {
            return Err(Error::Forbidden("this token does not grant access to that conversation".into()));
        }
        conversations::get(state, claims.tid, id).await?;
        let member = conversations::member(state, id, claims.address_kind(), &claims.sub).await?;
        if member.is_none() && claims.convs.is_some() {
            return Err(Error::Forbidden("you are no longer a participant of this conversation".into()));
        }
        Ok(())
    }
}

fn client_reads_messages_only() -> Error {
    Error::Forbidden("a client token reads only the messages of its conversations; use an API key".into())
}

/// The bearer credential, if the header is well-formed.
fn bearer(parts: &Parts) -> Option<&str> {
    let h = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    h.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // A JWT has exactly two dots; only then is it worth verifying as a client token.
        if let Some(token) = bearer(parts).filter(|t| t.matches('.').count() == 2) {
            match state.tokens.verify(token) {
                Ok(c) => {
                    if !sessions::alive(state, &c).await? {
                        return Err(Error::Unauthorized("this token's session has ended; sign in again".into()));
                    }
                    let who = if c.is_agent() { "agent" } else { "client" };
                    if let Err(e) = state.limits.api.check(&format!("{who}:{}:{}", c.tid, c.sub)) {
                        state.metrics.rate_limited("api");
                        return Err(e);
                    }
                    if c.is_agent() {
                        return Ok(Caller::Agent { tenant: c.tid, identity: c.sub });
                    }
                    return Ok(Caller::Client(c));
                }
                Err(TokenError::Expired) => return Err(Error::Unauthorized("the token has expired".into())),
                // Not one of our tokens: perhaps an API key that happens to contain dots.
                Err(TokenError::Invalid) => {}
            }
        }
        let TenantCtx(t) = TenantCtx::from_request_parts(parts, state).await?;
        Ok(Caller::Operator(t))
    }
}
