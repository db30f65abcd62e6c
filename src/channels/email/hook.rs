//! `POST /v1.0/hooks/smtp/{account_id}`: inbound email (an inbound-parse POST) into rooms.
//!
//! Its own route rather than the generic provider hook because an email carries more than an
//! `InboundMessage` does: the threading headers decide the room. Order:
//! 1. the account's `inbound_secret` must be presented (`?secret=`, `X-Inbound-Secret`, or the
//!    password of HTTP Basic auth), compared in constant time: else 403 and nothing stored;
//! 2. the room is the one whose mail it answers — `In-Reply-To`, then `References`, looked up
//!    in the account's Message-ID index (our outbound ids and earlier inbound ones) — as long
//!    as the sender can take part there; else the `(account, sender)` binding, opening a room
//!    (named after the subject) when there is none;
//! 3. the quoted-reply-trimmed text is posted with the Message-ID as idempotency key (a
//!    re-posted webhook is one message), then the Message-ID is indexed and the sender's
//!    thread remembered for our replies (`participant.data.email_thread`).

use super::parse::{Email, parse};
use super::text::base_subject;
use crate::app::AppState;
use crate::channels::inbound::{constant_time_eq, resolve_room};
use crate::conversations::{self, Author, NewParticipant, PostRequest};
use crate::error::{Error, Path, Result};
use crate::model::{Account, Address, AddressType, Endpoint, Participant};
use crate::store::DeliveryRef;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use uuid::Uuid;

/// Most References kept per thread (oldest dropped, the root kept first).
const MAX_REFERENCES: usize = 20;

/// The secret the caller presented, if any.
fn presented(query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let from_query = query.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "secret"));
    if let Some((_, v)) = from_query {
        return Some(v.into_owned());
    }
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(v) = h("x-inbound-secret") {
        return Some(v.to_string());
    }
    let basic = h("authorization")?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(basic.trim()).ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    pair.split_once(':').map(|(_, password)| password.to_string())
}

/// Whether the request presents the account's `inbound_secret` (never when none is set).
pub fn verified(account: &Account, query: Option<&str>, headers: &HeaderMap) -> bool {
    let expected = account.secret("inbound_secret");
    let given = presented(query, headers).unwrap_or_default();
    !expected.is_empty() && constant_time_eq(given.as_bytes(), expected.as_bytes())
}

pub async fn hook(
    State(state): State<AppState>,
    Path(account_id): Path<Uuid>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let account = state
        .accounts
        .get(state.channel_store.as_ref(), account_id)
        .await?
        .filter(|a| a.provider == super::PROVIDER)
        .ok_or(Error::NotFound("account"))?;
    if let Err(e) = state.limits.provider.check(&account.id.to_string()) {
        state.metrics.rate_limited("provider");
        return Err(e);
    }
    if !verified(&account, query.as_deref(), &headers) {
        tracing::warn!(account = %account.id, "inbound email refused: wrong or missing secret");
        return Err(Error::Forbidden("inbound_secret missing or wrong".into()));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let email = parse(content_type, body).await?;
    receive(&state, &account, email).await?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "OK").into_response())
}

/// Posts one email into its room (see the module docs).
pub async fn receive(state: &AppState, account: &Account, email: Email) -> Result<()> {
    let (conversation, participant) = route(state, account, &email).await?;
    name_new_room(state, account, conversation, &email.subject).await;
    let client_id: String = format!("{}:{}", super::PROVIDER, email.message_id).chars().take(128).collect();
    let req = PostRequest {
        tenant: account.tenant_id,
        conversation_id: conversation,
        author: Author::Participant(Box::new(participant.clone())),
        text: email.text.clone(),
        medias: Vec::new(),
        client_id: Some(client_id),
        via: None,
    };
    let appended = conversations::post(state, req).await?;
    // Also on a duplicate: a retried webhook repairs what a failure below left undone.
    let r =
        DeliveryRef { conversation_id: conversation, message_id: appended.message.id, participant_id: participant.id };
    state.channel_store.put_provider_ref(account.id, &email.message_id, r).await?;
    remember_thread(state, account, conversation, participant.id, &email).await
}

/// The room the email answers (if the sender can take part there), else the sender's room.
async fn route(state: &AppState, account: &Account, email: &Email) -> Result<(Uuid, Participant)> {
    for id in &email.replies_to {
        if let Some(r) = state.channel_store.provider_ref(account.id, id).await? {
            if let Some(p) = seat(state, account, r.conversation_id, &email.from).await? {
                return Ok((r.conversation_id, p));
            }
            break;
        }
    }
    resolve_room(state, account, &email.from).await
}

/// The sender's participant in `conversation`, added (and bound) if it is not there yet;
/// `None` when it cannot be: the room is gone, or the sender is bound to another room.
async fn seat(state: &AppState, account: &Account, conversation: Uuid, from: &Address) -> Result<Option<Participant>> {
    if let Some(p) = conversations::member(state, conversation, AddressType::Email, &from.target).await? {
        return Ok(Some(p));
    }
    let new = NewParticipant { id: None, address: from.clone(), account_id: Some(account.id) };
    match conversations::add_participant(state, account.tenant_id, conversation, new).await {
        Ok(p) => Ok(Some(p)),
        Err(Error::Conflict(_) | Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A room this email just opened is named after its subject, so replies read `Re: <subject>`.
async fn name_new_room(state: &AppState, account: &Account, conversation: Uuid, subject: &str) {
    let name: String = base_subject(subject).chars().take(200).collect();
    let Ok(c) = conversations::get(state, account.tenant_id, conversation).await else { return };
    let opened_here = c.last_seq == 0 && c.metadata["source"]["account_id"] == account.id.to_string();
    if opened_here && !name.is_empty() && c.name != name {
        let t = account.tenant_id;
        if let Err(e) = conversations::update(state, t, conversation, Some(name), None, None).await {
            tracing::warn!(error = %e, %conversation, "new email conversation keeps its default name");
        }
    }
}

/// Keeps the sender's last Message-ID and References for our replies, and routes replies to
/// this address again if the person last wrote from another channel.
async fn remember_thread(
    state: &AppState,
    account: &Account,
    conversation: Uuid,
    pid: Uuid,
    email: &Email,
) -> Result<()> {
    let mut p = conversations::participant(state, conversation, pid).await?;
    let mut refs = email.references.clone();
    if refs.len() > MAX_REFERENCES {
        refs.drain(1..refs.len() + 1 - MAX_REFERENCES);
    }
    let thread = serde_json::json!({"message_id": email.message_id, "references": refs, "subject": email.subject});
    p.data.insert("email_thread".into(), thread);
    let endpoint = Endpoint { address: email.from.clone(), account_id: Some(account.id) };
    let current = p.reply_endpoint();
    if !(current.address.same_endpoint(&endpoint.address) && current.account_id == endpoint.account_id) {
        p.reply_via = Some(endpoint);
    }
    state.channel_store.update_participant(&p).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_from_query_header_or_basic_auth() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(Some("a=1&secret=s%20x"), &h).as_deref(), Some("s x"));
        assert_eq!(presented(None, &h), None);
        h.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(presented(None, &h).as_deref(), Some("pass"));
        h.insert("x-inbound-secret", "hdr".parse().unwrap());
        assert_eq!(presented(None, &h).as_deref(), Some("hdr"));
    }
}
