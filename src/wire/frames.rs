//! The WebSocket protocol: JSON text frames tagged by `type`.
//!
//! Client → server frames are parsed into [`ClientFrame`]; server → client frames are built
//! here so that every producer (store, session, broker) emits byte-identical JSON. A message
//! frame is serialized once per message, never per subscriber. Owns the frames' shape only:
//! when a frame is sent, and to whom, belongs to `ws` and the hub.

use crate::model::{Conversation, Media, Message};
use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Frames a client may send.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// The token, as the first frame of a connection opened without one in the URL or the
    /// subprotocol list (see `ws::admission`). Refused later in the connection's life.
    Auth {
        token: SecretToken,
    },
    /// Join a room; with `since`, first replay every message after that seq.
    Subscribe {
        conversation_id: Uuid,
        #[serde(default)]
        since: Option<u64>,
        /// The epoch the client's `since` belongs to; a different one means "reload".
        #[serde(default)]
        epoch: Option<String>,
    },
    Unsubscribe {
        conversation_id: Uuid,
    },
    /// Post a message; `client_id` makes retries safe (same id → the original ack).
    Send {
        conversation_id: Uuid,
        #[serde(default)]
        text: String,
        #[serde(default)]
        medias: Vec<Media>,
        #[serde(default)]
        client_id: Option<String>,
        /// `internal` posts a private note (operator and agent tokens only).
        #[serde(default)]
        visibility: crate::model::Visibility,
        /// Deliver through this account where the recipient has an address on it.
        #[serde(default)]
        via: Option<crate::model::SendVia>,
    },
    Typing {
        conversation_id: Uuid,
    },
    Read {
        conversation_id: Uuid,
        seq: u64,
    },
    Ping {
        #[serde(default)]
        id: Option<serde_json::Value>,
    },
    /// Swap in a fresh token for the same tenant and identity before the current one expires.
    Refresh {
        token: SecretToken,
    },
    /// Follow the tenant's conversation list (operator and agent tokens): `watching`, then
    /// `conversation` frames (see `crate::watch`).
    WatchConversations {},
    UnwatchConversations {},
    /// Counts of who is in a subscribed room, on demand (big rooms announce no presence).
    PresenceStats {
        conversation_id: Uuid,
    },
}

impl ClientFrame {
    /// Parses a frame. A `send` (the frame sent once per message) is read straight into its
    /// fields first: serde reads an internally tagged enum by buffering every field into a
    /// tree before it picks the variant, which cost more than the rest of the parse.
    pub fn parse(text: &str) -> serde_json::Result<ClientFrame> {
        match serde_json::from_str::<SendFrame>(text) {
            Ok(f) => Ok(ClientFrame::Send {
                conversation_id: f.conversation_id,
                text: f.text,
                medias: f.medias,
                client_id: f.client_id,
                visibility: f.visibility,
                via: f.via,
            }),
            Err(_) => serde_json::from_str(text),
        }
    }
}

/// `ClientFrame::Send` as a struct (same fields, defaults and refusals; `type` must be `send`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFrame {
    #[serde(rename = "type")]
    _kind: SendTag,
    conversation_id: Uuid,
    #[serde(default)]
    text: String,
    #[serde(default)]
    medias: Vec<Media>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    visibility: crate::model::Visibility,
    #[serde(default)]
    via: Option<crate::model::SendVia>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum SendTag {
    Send,
}

/// A client token inside a frame: its `Debug` is redacted so it cannot reach a log line.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct SecretToken(pub String);

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

/// Frames the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Subscribed {
        conversation_id: Uuid,
        seq: u64,
        epoch: &'a str,
        recovered: bool,
        online: Vec<String>,
        /// The holder's participant in the room and its read marker, when it is a participant.
        #[serde(skip_serializing_if = "Option::is_none")]
        participant_id: Option<Uuid>,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_read_seq: Option<u64>,
    },
    Unsubscribed {
        conversation_id: Uuid,
        reason: &'a str,
    },
    Message {
        message: &'a Message,
    },
    /// A message changed after it was sent (delivery status); same seq, same id.
    MessageUpdated {
        message: &'a Message,
    },
    Ack {
        conversation_id: Uuid,
        client_id: Option<&'a str>,
        seq: u64,
        message_id: Uuid,
        duplicate: bool,
        /// The participant the message was written as (an operator token joins on its first send).
        author_participant_id: Option<Uuid>,
    },
    /// `identity` only for connections that see the room's inside (`Publication::Audience`).
    Typing {
        conversation_id: Uuid,
        participant_id: Option<Uuid>,
        #[serde(skip_serializing_if = "Option::is_none")]
        identity: Option<&'a str>,
    },
    Read {
        conversation_id: Uuid,
        participant_id: Option<Uuid>,
        #[serde(skip_serializing_if = "Option::is_none")]
        identity: Option<&'a str>,
        seq: u64,
    },
    Presence {
        conversation_id: Uuid,
        identity: &'a str,
        state: &'a str,
    },
    /// The answer to `presence_stats`: connections and distinct identities in the room on the
    /// node the connection is on.
    PresenceStats {
        conversation_id: Uuid,
        connections: usize,
        identities: usize,
        /// Whether the room announces `presence` frames (`ws.presence_max_members`).
        announced: bool,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<Uuid>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a serde_json::Value>,
    },
    /// The conversation's owner changed; both fields are null when it became unassigned.
    Assigned {
        conversation_id: Uuid,
        owner_type: Option<crate::model::OwnerType>,
        owner_id: Option<&'a str>,
    },
    /// The conversation's status changed (`open`, `pending`, `snoozed`, `resolved`, `closed`):
    /// sent to the room, so an end user's page can say the conversation has ended.
    Status {
        conversation_id: Uuid,
        status: crate::model::ConversationStatus,
    },
    /// The `refresh` token is in use; the connection now lives until `expires_at`.
    Refreshed {
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// The conversation watch is live: reload the list now; later changes arrive as frames.
    /// Sent again whenever changes may have been missed.
    Watching {},
    /// `unwatch_conversations` took effect (frames already queued may still arrive).
    Unwatched {},
    /// A conversation of the tenant changed: `created`, `updated` (fields, owner, or a new
    /// message: then `last_message`), `deleted`, or (agents) `removed` from its view.
    Conversation {
        event: &'a str,
        conversation_id: Uuid,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation: Option<&'a Conversation>,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_message: Option<&'a Message>,
    },
}

impl ServerFrame<'_> {
    pub fn to_text(&self) -> Utf8Bytes {
        serde_json::to_string(self).expect("server frames always serialize").into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        let id = Uuid::now_v7();
        let f: ClientFrame =
            serde_json::from_str(&format!(r#"{{"type":"subscribe","conversation_id":"{id}","since":4}}"#)).unwrap();
        assert_eq!(f, ClientFrame::Subscribe { conversation_id: id, since: Some(4), epoch: None });
        let f: ClientFrame = serde_json::from_str(&format!(
            r#"{{"type":"send","conversation_id":"{id}","text":"hi","client_id":"c1"}}"#
        ))
        .unwrap();
        assert!(matches!(f, ClientFrame::Send { ref text, .. } if text == "hi"));
        let f: ClientFrame = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(f, ClientFrame::Ping { id: None });
        let f: ClientFrame = serde_json::from_str(r#"{"type":"watch_conversations"}"#).unwrap();
        assert_eq!(f, ClientFrame::WatchConversations {});
    }

    #[test]
    fn the_send_shortcut_reads_what_the_enum_reads() {
        let id = Uuid::now_v7();
        let cases = [
            format!(r#"{{"type":"send","conversation_id":"{id}","text":"hi","client_id":"c1"}}"#),
            format!(r#"{{"text":"hi","conversation_id":"{id}","type":"send","visibility":"internal"}}"#),
            format!(
                r#"{{"type":"send","conversation_id":"{id}","medias":[{{"url":"https://x/y","content_type":"image/png"}}]}}"#
            ),
            format!(r#"{{"type":"send","conversation_id":"{id}","via":{{"account_id":"{id}"}}}}"#),
            format!(r#"{{"type":"send","conversation_id":"{id}","extra":1}}"#),
            format!(r#"{{"type":"send","conversation_id":"{id}","text":7}}"#),
            r#"{"type":"send"}"#.to_string(),
            format!(r#"{{"type":"subscribe","conversation_id":"{id}","since":4}}"#),
            format!(r#"{{"type":"typing","conversation_id":"{id}"}}"#),
            r#"{"type":"ping","id":3}"#.to_string(),
        ];
        for c in cases {
            let (fast, slow) = (ClientFrame::parse(&c).ok(), serde_json::from_str::<ClientFrame>(&c).ok());
            assert_eq!(fast, slow, "{c}");
        }
        assert!(matches!(ClientFrame::parse(&format!(r#"{{"type":"send","conversation_id":"{id}"}}"#)),
            Ok(ClientFrame::Send { ref text, .. }) if text.is_empty()));
    }

    #[test]
    fn rejects_unknown_types_and_fields() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"explode"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"ping","extra":1}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"read","conversation_id":"nope","seq":1}"#).is_err());
    }

    #[test]
    fn server_frames_are_tagged_json() {
        let v: serde_json::Value = serde_json::from_str(ServerFrame::Pong { id: None }.to_text().as_str()).unwrap();
        assert_eq!(v, serde_json::json!({"type":"pong"}));
        let v: serde_json::Value = serde_json::from_str(ServerFrame::Watching {}.to_text().as_str()).unwrap();
        assert_eq!(v, serde_json::json!({"type":"watching"}));
    }
}
