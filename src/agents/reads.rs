//! Read state on the server, per staff identity: how far an agent (or an operator or admin
//! token) has read each conversation, so unread counts are the same in every browser.
//!
//! A marker is kept per conversation in `reads:<conversation>` (identity → seq) and only ever
//! moves forward (`Records::raise`), whether it came from `POST …/read`, from the WebSocket
//! `read` frame, or from the identity writing in the room ([`own_message`]: whoever writes has
//! read up to there); it exists whether or not the identity is a participant of the room. The
//! unread count is cheap and exact about one thing: `last_seq - marker`, every stored seq after
//! the marker. None of those is the identity's own message (writing moved the marker past
//! it); private notes of colleagues and messages deleted since count, as they did arrive.
//!
//! Not here: who may mark what (the REST handler and the WebSocket session check access).

use super::records::Records;
use crate::error::Result;
use uuid::Uuid;

fn ns(conversation: Uuid) -> String {
    format!("reads:{conversation}")
}

/// Raises `identity`'s marker in `conversation` to `seq` (never lowers it); the marker now.
pub async fn mark(r: &dyn Records, conversation: Uuid, identity: &str, seq: u64) -> Result<u64> {
    r.raise(&ns(conversation), identity, seq).await
}

/// The markers of `identity` in each of `conversations`, in order (0 where none).
pub async fn markers(r: &dyn Records, conversations: &[Uuid], identity: &str) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(conversations.len());
    for c in conversations {
        out.push(r.get(&ns(*c), identity).await?.and_then(|v| v.parse().ok()).unwrap_or(0));
    }
    Ok(out)
}

/// A message of `identity` was stored at `seq`: writing in a room means having read it, so
/// the marker moves up to that message. This is what keeps a staff member's own messages out
/// of its unread count.
pub async fn own_message(r: &dyn Records, conversation: Uuid, identity: &str, seq: u64) -> Result<()> {
    r.raise(&ns(conversation), identity, seq).await.map(drop)
}

/// Forgets every marker of a deleted conversation.
pub async fn forget(r: &dyn Records, conversation: Uuid) -> Result<()> {
    r.clear(&ns(conversation)).await
}

/// Unread messages: after the marker, by this count.
pub fn unread(last_seq: u64, marker: u64) -> u64 {
    last_seq.saturating_sub(marker)
}
