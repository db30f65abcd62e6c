//! The nouns of Switchboard: tenants, conversations, participants, addresses, messages, events.
//!
//! These are plain data, shared by the store (which persists them), the REST API (which shows
//! them) and the WebSocket gateway (which streams them). Nothing here does I/O.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Current wall-clock time, truncated to milliseconds so that what we store, serialize and
/// read back compare equal on every backend.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// A customer of the hub. Every resource belongs to exactly one tenant and is invisible to others.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
}

/// The channel an address lives on.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AddressType {
    /// A browser chat user, identified by an identity string chosen by the developer.
    Webchat,
    /// A phone number (E.164) reached over SMS/MMS.
    Tel,
    /// A LINE user id.
    Line,
    /// A WhatsApp phone number.
    Whatsapp,
    /// A Telegram chat id.
    Telegram,
}

impl AddressType {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::Webchat => "webchat",
            AddressType::Tel => "tel",
            AddressType::Line => "line",
            AddressType::Whatsapp => "whatsapp",
            AddressType::Telegram => "telegram",
        }
    }
}

/// Where a participant can be reached: `{type, target, name}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Address {
    #[serde(rename = "type")]
    pub kind: AddressType,
    /// Channel-specific id: the webchat identity, an E.164 number, a LINE user id…
    pub target: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

impl Address {
    /// Two addresses denote the same endpoint when type and target match (the name is cosmetic).
    pub fn same_endpoint(&self, other: &Address) -> bool {
        self.kind == other.kind && self.target == other.target
    }
}

/// A conversation is a room: participants on any channel, one ordered message history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Conversation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub detail: String,
    /// Free-form developer data (a JSON object).
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Seq of the newest message (0 when empty).
    pub last_seq: u64,
    pub tm_create: DateTime<Utc>,
    pub tm_update: DateTime<Utc>,
}

/// A member of a conversation, reachable at `address`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Participant {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub tenant_id: Uuid,
    pub address: Address,
    /// Highest seq this participant reported as read.
    pub last_read_seq: u64,
    pub tm_create: DateTime<Utc>,
}

/// Who a message is going to relative to the hub.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Written by a participant (chat user, SMS sender…) and received by the hub.
    Inbound,
    /// Posted by the developer's backend through the REST API, going out to participants.
    Outbound,
}

/// Delivery state of a message.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Accepted, waiting for an outbound channel.
    Queued,
    /// Stored and fanned out (webchat) or handed to the provider.
    Sent,
    /// The provider confirmed delivery.
    Delivered,
    /// Delivery failed for good.
    Failed,
    /// Arrived from a participant.
    Received,
}

/// An attachment: a URL the recipient can fetch, with its content type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Media {
    pub url: String,
    #[serde(default)]
    pub content_type: String,
}

/// One entry in a conversation's history. `seq` is assigned by the store, gap-free per room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: u64,
    /// The participant that wrote it; `None` for messages posted by the API on the tenant's behalf.
    pub author: Option<Uuid>,
    pub direction: Direction,
    pub text: String,
    pub medias: Vec<Media>,
    pub status: MessageStatus,
    /// The sender's retry key, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub tm_create: DateTime<Utc>,
}
