//! `/v1.0/conversations/{id}/messages`: post (the REST door to the post path), history, one
//! message, edit and delete (the REST door to `conversations::edit_message` / `delete_message`).
//! Readers that may not see private notes (scoped end-user tokens) never get one here. Posting
//! takes an API key, or an operator or agent token that writes as its own participant, under
//! the WebSocket's rules (`agents::Caller::writer`); end-user tokens write over the WebSocket.

use super::pagination::page_size;
use crate::agents::Caller;
use crate::app::AppState;
use crate::conversations::{self, Author, PostRequest};
use crate::error::{Error, ErrorBody, Json, Path, Query, Result};
use crate::model::{Media, Message, Visibility};
use crate::store::SeqRange;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub medias: Vec<Media>,
    /// Retry key: posting again with the same value returns the original message (200).
    pub client_id: Option<String>,
    /// Post as this participant instead of as the API.
    pub author_participant_id: Option<Uuid>,
    /// `internal` posts a private note: shown to API keys, operator and agent tokens only,
    /// never delivered over a channel. Default `public`.
    #[serde(default)]
    pub visibility: Visibility,
    /// `{account_id}`: deliver through this channel account to the participants that have an
    /// address on it (e.g. answer a person on WhatsApp rather than where they last wrote).
    pub via: Option<crate::model::SendVia>,
    /// Send an approved WhatsApp template (`{name, language, parameters}`) instead of `text`
    /// (leave `text` empty: the rendered body becomes it). Allowed after the 24-hour window.
    pub template: Option<crate::model::TemplateSend>,
    /// A Messenger/Instagram message tag (e.g. `HUMAN_AGENT`) for a send after the 24-hour
    /// window, where the account's `message_tags` allow it.
    pub tag: Option<String>,
}

/// The new text of a message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    pub text: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Only messages with seq lower than this (paging back).
    pub before: Option<u64>,
    /// Only messages with seq higher than this (paging forward).
    pub after: Option<u64>,
    pub page_size: Option<usize>,
}

/// Messages in ascending seq order. `has_more`: more exist beyond this page in the paging direction.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub result: Vec<Message>,
    pub has_more: bool,
}

#[utoipa::path(post, path = "/v1.0/conversations/{id}/messages", tag = "messages", params(("id" = Uuid, Path)), request_body = PostMessage,
    description = "With an API key the message is the API's (or `author_participant_id`'s). An operator or agent token posts as \
        its own participant (joined on its first message, as on the WebSocket); an agent only in its own and unassigned \
        conversations. Both may post private notes (`visibility: internal`). End-user tokens post over the WebSocket (403 here).",
    responses((status = 201, body = Message), (status = 200, body = Message, description = "duplicate client_id: the original"),
        (status = 403, body = ErrorBody, description = "an end-user token, an agent on another agent's conversation, or a token naming `author_participant_id`"),
        (status = 404, body = ErrorBody), (status = 409, description = "`closed`: the conversation takes no more messages", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody, description = "among others `window_closed`: every channel recipient's 24-hour window is closed (send a `template` or an allowed `tag`)"),
        (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<PostMessage>,
) -> Result<(StatusCode, Json<Message>)> {
    let tenant = caller.tenant();
    if !body.visibility.is_public() && !caller.sees_internal() {
        return Err(Error::Forbidden("only API keys, operator and agent tokens write internal notes".into()));
    }
    let author = match (body.author_participant_id, caller.writer(&state, id).await?) {
        (None, None) => Author::Api,
        (Some(pid), None) => {
            conversations::get(&state, tenant, id).await?;
            let p = conversations::participant(&state, id, pid).await.map_err(|_| {
                Error::invalid("unknown_author", "author_participant_id is not a participant of this conversation")
            })?;
            Author::Participant(Box::new(p))
        }
        (None, Some(me)) => Author::Participant(Box::new(me)),
        (Some(_), Some(_)) => {
            return Err(Error::Forbidden(
                "a token posts as itself; only an API key names author_participant_id".into(),
            ));
        }
    };
    let mut text = body.text;
    if let Some(t) = &body.template {
        if !text.is_empty() || !body.medias.is_empty() {
            return Err(Error::invalid("invalid_template", "a template send carries no text or medias of its own"));
        }
        text = super::templates::render(&state, tenant, id, t, body.via.map(|v| v.account_id)).await?;
    }
    let req = PostRequest {
        tenant,
        conversation_id: id,
        author,
        text,
        medias: body.medias,
        client_id: body.client_id,
        via: None,
        screened: false,
        send_via: body.via.map(|v| v.account_id),
        visibility: body.visibility,
        template: body.template,
        tag: body.tag,
        room: None,
    };
    let appended = conversations::post(&state, req).await?;
    if !appended.duplicate {
        state.metrics.message_posted(crate::metrics::Entry::Rest);
    }
    if let Some(identity) = caller.staff_identity() {
        // Whoever writes has read up to there (`agents::reads`).
        crate::agents::reads::own_message(&*state.records, id, identity, appended.message.seq).await?;
    }
    let status = if appended.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(appended.message)))
}

#[utoipa::path(get, path = "/v1.0/conversations/{id}/messages", tag = "messages", params(("id" = Uuid, Path), HistoryParams),
    responses((status = 200, body = MessagePage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: crate::agents::Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<HistoryParams>,
) -> Result<Json<MessagePage>> {
    caller.messages_of(&state, id).await?;
    let notes = caller.sees_internal();
    let limits = &state.config.limits;
    let size = page_size(q.page_size, limits.page_size_default, limits.page_size_max)?;
    let mut result = state.store.messages(id, SeqRange { after: q.after, before: q.before, limit: size + 1 }).await?;
    let has_more = result.len() > size;
    if has_more {
        if q.after.is_some() {
            result.truncate(size);
        } else {
            result.remove(0);
        }
    }
    // A private note is left out for readers that may not see it (the page may then be short).
    result.retain(|m| notes || !m.is_internal());
    crate::media::attach::fresh_all(&state, &mut result);
    Ok(Json(MessagePage { result, has_more }))
}

#[utoipa::path(get, path = "/v1.0/conversations/{id}/messages/{message_id}", tag = "messages",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 200, body = Message), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: crate::agents::Caller,
    Path((id, message_id)): Path<(Uuid, Uuid)>,
) -> Result<Json<Message>> {
    caller.messages_of(&state, id).await?;
    let mut m = state.store.get_message(id, message_id).await?;
    if let Some(m) = m.as_mut() {
        crate::media::attach::fresh(&state, m);
    }
    m.filter(|m| caller.sees_internal() || !m.is_internal()).map(Json).ok_or(Error::NotFound("message"))
}

/// Who is changing a message: an API key, or the participant behind a token.
async fn reviser(state: &AppState, caller: &Caller, id: Uuid) -> Result<conversations::Reviser> {
    caller.messages_of(state, id).await?;
    let (kind, identity) = match caller {
        Caller::Operator(_) => return Ok(conversations::Reviser::Api),
        Caller::Agent { identity, .. } => (crate::model::AddressType::Agent, identity.as_str()),
        Caller::Client(c) => (c.address_kind(), c.sub.as_str()),
    };
    let p = conversations::member(state, id, kind, identity)
        .await?
        .ok_or_else(|| Error::Forbidden("only its author or an API key may change a message".into()))?;
    Ok(conversations::Reviser::Participant(p.id))
}

#[utoipa::path(put, path = "/v1.0/conversations/{id}/messages/{message_id}", tag = "messages",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)), request_body = EditMessage,
    responses((status = 200, body = Message, description = "the message as edited (`edited_at` set)"),
        (status = 403, body = ErrorBody, description = "neither its author nor an API key"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the message was deleted"), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, message_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<EditMessage>,
) -> Result<Json<Message>> {
    let who = reviser(&state, &caller, id).await?;
    Ok(Json(conversations::edit_message(&state, caller.tenant(), id, message_id, who, body.text).await?))
}

#[utoipa::path(delete, path = "/v1.0/conversations/{id}/messages/{message_id}", tag = "messages",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 200, body = Message, description = "the tombstone (`deleted_at` set, no text or medias); the same again for a deleted message"),
        (status = 403, body = ErrorBody, description = "neither its author nor an API key"), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, message_id)): Path<(Uuid, Uuid)>,
) -> Result<Json<Message>> {
    let who = reviser(&state, &caller, id).await?;
    Ok(Json(conversations::delete_message(&state, caller.tenant(), id, message_id, who).await?))
}
