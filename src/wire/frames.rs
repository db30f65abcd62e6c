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

/// The frame every subscriber of a room receives for a new message.
pub fn message_frame(message: &Message) -> Utf8Bytes {
    ServerFrame::Message { message }.to_text()
}

/// [`message_frame`] around `json`, the message as serde_json already wrote it (no second
/// serialization): the same bytes.
pub fn message_frame_of(json: &str) -> Utf8Bytes {
    let mut frame = String::with_capacity(OpenSeq::FRAME_PREFIX.len() + json.len() + OpenSeq::FRAME_SUFFIX.len());
    frame.push_str(OpenSeq::FRAME_PREFIX);
    frame.push_str(json);
    frame.push_str(OpenSeq::FRAME_SUFFIX);
    frame.into()
}

/// A message whose seq is not known yet, as text with the seq left open: the stored JSON is
/// `JSON_HEAD` + seq + `rest`, its frame `FRAME_PREFIX` + that JSON + `FRAME_SUFFIX`. Built by
/// construction (the seq is taken out of the JSON object and put first), so a store that
/// assigns the seq inside an atomic step (the Redis append script) fills it in without
/// parsing or searching JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSeq {
    /// Everything after the seq, starting with `,` (or `}` for a message with no other field).
    pub rest: String,
}

impl OpenSeq {
    /// What stored message JSON starts with, before the seq.
    pub const JSON_HEAD: &'static str = "{\"seq\":";
    /// What a message frame puts before the message JSON, and after it.
    pub const FRAME_PREFIX: &'static str = "{\"type\":\"message\",\"message\":";
    pub const FRAME_SUFFIX: &'static str = "}";

    pub fn new(message: &Message) -> serde_json::Result<OpenSeq> {
        let mut v = serde_json::to_value(message)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("seq");
        }
        let body = serde_json::to_string(&v)?;
        let rest = match body.strip_prefix("{}") {
            Some(_) => "}".to_string(),
            None => format!(",{}", &body[1..]),
        };
        Ok(OpenSeq { rest })
    }

    /// The stored JSON once the seq is known.
    pub fn json(&self, seq: u64) -> String {
        format!("{}{seq}{}", Self::JSON_HEAD, self.rest)
    }

    /// The frame once the seq is known.
    pub fn frame(&self, seq: u64) -> String {
        format!("{}{}{}", Self::FRAME_PREFIX, self.json(seq), Self::FRAME_SUFFIX)
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
    fn rejects_unknown_types_and_fields() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"explode"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"ping","extra":1}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"read","conversation_id":"nope","seq":1}"#).is_err());
    }

    #[test]
    fn an_open_seq_message_closes_into_the_same_json_as_the_message() {
        use crate::model::{Direction, MessageStatus, now};
        let m = Message {
            id: Uuid::now_v7(),
            conversation_id: Uuid::now_v7(),
            seq: 0,
            author: None,
            direction: Direction::Outbound,
            text: "\"seq\":0 inside the text".into(),
            medias: vec![],
            status: MessageStatus::Sent,
            client_id: None,
            tm_create: now(),
            channel: None,
            deliveries: vec![],
            via: None,
            visibility: Default::default(),
            edited_at: None,
            deleted_at: None,
            template: None,
            tag: None,
        };
        let open = OpenSeq::new(&m).unwrap();
        let with = Message { seq: 17, ..m };
        let json: serde_json::Value = serde_json::from_str(&open.json(17)).unwrap();
        assert_eq!(json, serde_json::to_value(&with).unwrap());
        let frame: serde_json::Value = serde_json::from_str(&open.frame(17)).unwrap();
        let expected: serde_json::Value = serde_json::from_str(message_frame(&with).as_str()).unwrap();
        assert_eq!(frame, expected);
        assert_eq!(message_frame_of(&serde_json::to_string(&with).unwrap()), message_frame(&with));
    }

    #[test]
    fn server_frames_are_tagged_json() {
        let v: serde_json::Value = serde_json::from_str(ServerFrame::Pong { id: None }.to_text().as_str()).unwrap();
        assert_eq!(v, serde_json::json!({"type":"pong"}));
        let v: serde_json::Value = serde_json::from_str(ServerFrame::Watching {}.to_text().as_str()).unwrap();
        assert_eq!(v, serde_json::json!({"type":"watching"}));
    }
}
