//! `POST /v1.0/widget/sessions`: a visitor opens a page with the widget.
//!
//! Who the visitor is, in order: a proven identity (`identifier` + `identifier_hash`, the
//! hex HMAC-SHA256 of the identifier under the account's `identity_secret`, computed by the
//! site's backend) makes a known user, `user:<identifier>`, the same contact and history on
//! every device; else a still-valid visitor token brings back the same visitor; else a new
//! anonymous visitor `visitor:<uuid>` is made up. A wrong hash is refused (403), never
//! downgraded to an anonymous session, so a site's bug shows at once.
//!
//! A session creates the visitor's contact (with the name and email the pre-chat form gave)
//! but no conversation: that waits for the first message (`room.rs`). The answer names the
//! people of the visitor's conversation by display name and kind only, never by identity.

use super::{ROLE_VISITOR, VISITOR_TTL_SECS, admit, unix_now};
use crate::app::AppState;
use crate::auth::ClientClaims;
use crate::conversations::contacts::{self, ContactFields};
use crate::error::{Error, ErrorBody, Json, Result};
use crate::model::{Account, AddressType, Branding, ConversationStatus, Prechat};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::SocketAddr;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The website account's public key (`pk_…`).
    pub key: String,
    /// The visitor token of an earlier session (kept in `localStorage`).
    pub visitor_token: Option<String>,
    /// The site's own id for a logged-in user; needs `identifier_hash`.
    pub identifier: Option<String>,
    /// Hex HMAC-SHA256 of `identifier` keyed with the account's `identity_secret`.
    pub identifier_hash: Option<String>,
    /// From the pre-chat form (or the site): set on the visitor's contact.
    pub name: Option<String>,
    pub email: Option<String>,
}

/// The visitor's contact, as the visitor may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorContact {
    pub id: Uuid,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Someone in the visitor's conversation, by display name only.
#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    pub participant_id: Uuid,
    /// `visitor` (this visitor), `agent`, or `team` (anyone else: the site's backend, another
    /// channel).
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

/// The visitor's current conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorConversation {
    pub id: Uuid,
    pub status: ConversationStatus,
    pub people: Vec<Person>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// Keep it (`localStorage`) and send it next time: same visitor, a fresh token.
    pub visitor_token: String,
    pub visitor_expires_at: u64,
    /// The visitor's identity: `sub` of its tokens, `target` of its webchat address.
    pub identity: String,
    /// The visitor proved an identity (`identifier_hash`).
    pub verified: bool,
    pub contact: VisitorContact,
    /// A client token for the WebSocket, scoped to the visitor's conversation (none until the
    /// first message: it connects, with nothing to subscribe).
    pub token: String,
    pub token_expires_at: u64,
    /// `null` until the visitor's first message.
    pub conversation: Option<VisitorConversation>,
    pub branding: Branding,
    pub prechat: Prechat,
    /// Some agent of the tenant is online now.
    pub agents_online: bool,
}

/// Hex HMAC-SHA256 of `identifier` under `secret`.
pub fn identity_hash(secret: &str, identifier: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(identifier.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity the request proves, if it names one; 403 when the hash does not match.
fn proven(account: &Account, identifier: &str, hash: Option<&str>) -> Result<String> {
    let Some(hash) = hash.map(str::trim).filter(|h| !h.is_empty()) else {
        return Err(Error::invalid(
            "missing_identifier_hash",
            "identifier needs identifier_hash (computed by your backend)",
        ));
    };
    let Ok(secret) = account.secret(super::settings::IDENTITY_SECRET) else {
        return Err(Error::invalid(
            "identity_not_enabled",
            "this website account has no credentials.identity_secret: identity verification is off",
        ));
    };
    let expected = identity_hash(secret, identifier);
    if !crate::auth::constant_time_eq(expected.as_bytes(), hash.to_ascii_lowercase().as_bytes()) {
        return Err(Error::Forbidden(
            "identifier_hash does not match identifier: it must be the hex HMAC-SHA256 of the identifier keyed \
             with the account's identity_secret"
                .into(),
        ));
    }
    Ok(format!("user:{identifier}"))
}

/// Who is calling, and whether they proved it.
fn who(state: &AppState, account: &Account, b: &SessionRequest) -> Result<(String, bool)> {
    if let Some(id) = b.identifier.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
        crate::conversations::check_name(state, "identifier", id)?;
        return Ok((proven(account, id, b.identifier_hash.as_deref())?, true));
    }
    if let Some(t) = b.visitor_token.as_deref().filter(|t| !t.is_empty())
        && let Some(c) = super::visitor(state, account, t)?
    {
        return Ok((c.sub.clone(), c.sub.starts_with("user:")));
    }
    Ok((format!("visitor:{}", Uuid::now_v7().simple()), false))
}

#[utoipa::path(post, path = "/v1.0/widget/sessions", tag = "widget", request_body = SessionRequest,
    responses((status = 201, body = SessionResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(b): Json<SessionRequest>,
) -> Result<(StatusCode, Json<SessionResponse>)> {
    let account = admit(&state, &b.key, &headers, &peer).await?;
    let tenant = account.tenant_id;
    let (identity, verified) = who(&state, &account, &b)?;
    let contact = contact(&state, tenant, &identity, &b).await?;
    let now = unix_now();
    let claims = ClientClaims {
        sub: identity.clone(),
        tid: tenant,
        convs: Some(Vec::new()),
        iat: now,
        exp: now + VISITOR_TTL_SECS,
        role: Some(ROLE_VISITOR.into()),
        sid: None,
    };
    let conversation = conversation(&state, &account, &identity).await?;
    let (token, token_expires_at) =
        super::client_token(&state, tenant, &identity, conversation.iter().map(|c| c.id).collect());
    let w = account.widget.clone().unwrap_or_default();
    let agents_online = !state.agents.available(tenant).await?.is_empty();
    Ok((
        StatusCode::CREATED,
        Json(SessionResponse {
            visitor_token: state.tokens.sign(&claims),
            visitor_expires_at: claims.exp,
            identity,
            verified,
            contact,
            token,
            token_expires_at,
            conversation,
            branding: w.branding,
            prechat: w.prechat,
            agents_online,
        }),
    ))
}

/// The visitor's contact, created for its webchat address when there is none; the name and
/// email given are written to it when they differ.
async fn contact(state: &AppState, tenant: Uuid, identity: &str, b: &SessionRequest) -> Result<VisitorContact> {
    let name = b.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let email = b.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = email
        && (!e.contains('@') || e.contains(char::is_whitespace))
    {
        return Err(Error::invalid("invalid_email", "email must look like name@example.com"));
    }
    let id = contacts::for_address(state, tenant, &super::address(identity, name.unwrap_or("")))
        .await?
        .ok_or_else(|| Error::internal("a webchat address always has a contact"))?;
    let mut c = contacts::get(state, tenant, id).await?;
    let new_name = name.filter(|n| *n != c.name).map(String::from);
    let new_email = email.filter(|e| c.email.as_deref() != Some(*e)).map(|e| Some(e.to_string()));
    if new_name.is_some() || new_email.is_some() {
        let f = ContactFields { name: new_name, email: new_email, ..Default::default() };
        c = contacts::update(state, tenant, id, f).await?;
    }
    Ok(VisitorContact { id: c.id, name: c.name, email: c.email })
}

/// The visitor's current conversation on `account` (the one its binding names), if any.
pub async fn conversation(state: &AppState, account: &Account, identity: &str) -> Result<Option<VisitorConversation>> {
    let Some(b) = state.channel_store.binding(account.id, &super::address(identity, "")).await? else {
        return Ok(None);
    };
    let c = match crate::conversations::get(state, account.tenant_id, b.conversation_id).await {
        Ok(c) => c,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(VisitorConversation {
        id: c.id,
        status: c.lifecycle.status,
        people: people(state, account, c.id, identity).await?,
    }))
}

/// Everyone in `conversation` by display name and kind: agents' identities, addresses and
/// contacts stay inside.
pub async fn people(state: &AppState, account: &Account, conversation: Uuid, identity: &str) -> Result<Vec<Person>> {
    let branding = account.widget.as_ref().map(|w| w.branding.clone()).unwrap_or_default();
    let team = if branding.name.is_empty() { account.name.clone() } else { branding.name.clone() };
    let list = state.store.list_participants(conversation).await?;
    Ok(list
        .into_iter()
        .map(|p| {
            let me = p.address.kind == AddressType::Webchat && p.address.target == identity;
            let kind = match p.address.kind {
                _ if me => "visitor",
                AddressType::Agent => "agent",
                _ => "team",
            };
            let name = match kind {
                "visitor" => "You".to_string(),
                "agent" if !p.address.name.is_empty() => p.address.name.clone(),
                _ => team.clone(),
            };
            let avatar_url = (kind != "visitor").then(|| branding.avatar_url.clone()).flatten();
            Person { participant_id: p.id, kind, name, avatar_url }
        })
        .collect())
}
