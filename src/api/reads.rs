//! Read state on the server: `POST /v1.0/conversations/{id}/read` moves the caller's marker,
//! and [`ConversationView`] is a conversation as `GET /v1.0/conversations` and `GET
//! /v1.0/conversations/{id}` show it, with the caller's `last_read_seq` and `unread_count` when
//! the caller is staff with an identity (an agent, admin or operator token).
//!
//! The markers and what `unread_count` counts are `crate::agents::reads`; this file checks who
//! may mark what and shapes the answers.

use crate::agents::{Caller, reads};
use crate::app::AppState;
use crate::error::{Error, ErrorBody, Json, Path, Result};
use crate::model::Conversation;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A conversation, with the caller's read state when it has one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    #[serde(flatten)]
    pub conversation: Conversation,
    /// The caller's read marker (agent, admin and operator tokens only; 0 = nothing read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_read_seq: Option<u64>,
    /// Messages after the marker: `last_seq - last_read_seq`. Never the caller's own (writing
    /// moves the marker); notes of colleagues and messages deleted since do count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<u64>,
}

/// `conversations` with `caller`'s read state, if it has any.
pub async fn annotate(
    state: &AppState,
    caller: &Caller,
    conversations: Vec<Conversation>,
) -> Result<Vec<ConversationView>> {
    let Some(identity) = caller.staff_identity() else {
        return Ok(conversations
            .into_iter()
            .map(|conversation| ConversationView { conversation, last_read_seq: None, unread_count: None })
            .collect());
    };
    let ids: Vec<Uuid> = conversations.iter().map(|c| c.id).collect();
    let markers = reads::markers(&*state.records, &ids, identity).await?;
    Ok(conversations
        .into_iter()
        .zip(markers)
        .map(|(conversation, m)| {
            let m = m.min(conversation.last_seq);
            let unread = reads::unread(conversation.last_seq, m);
            ConversationView { conversation, last_read_seq: Some(m), unread_count: Some(unread) }
        })
        .collect())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// Read up to and including this seq (a marker never moves back; beyond the newest
    /// message it stops at the newest).
    pub seq: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadState {
    pub conversation_id: Uuid,
    pub identity: String,
    pub last_read_seq: u64,
    pub unread_count: u64,
}

#[utoipa::path(post, path = "/v1.0/conversations/{id}/read", tag = "conversations", params(("id" = Uuid, Path)), request_body = MarkRead,
    responses((status = 200, body = ReadState), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "an API key or end-user token (no staff identity), or another agent's conversation", body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn mark(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(b): Json<MarkRead>,
) -> Result<Json<ReadState>> {
    let Some(identity) = caller.staff_identity().map(str::to_string) else {
        return Err(Error::Forbidden(
            "read state belongs to an identity: use an agent, admin or operator token (end users: the WebSocket `read` frame)".into(),
        ));
    };
    let c = caller.conversation(&state, id).await?;
    let m = reads::mark(&*state.records, id, &identity, b.seq.min(c.last_seq)).await?.min(c.last_seq);
    Ok(Json(ReadState { conversation_id: id, identity, last_read_seq: m, unread_count: reads::unread(c.last_seq, m) }))
}
