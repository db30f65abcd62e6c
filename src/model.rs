//! The nouns of Switchboard: tenants, conversations, participants, addresses, messages, events.
//!
//! These are plain data, shared by the store (which persists them), the REST API (which shows
//! them) and the WebSocket gateway (which streams them). Nothing here does I/O.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

mod account;
mod contact;
mod status;
mod widget;
pub mod window;
pub use account::{Account, MatchMode, ProviderKind};
pub use contact::{Contact, ContactAddress};
pub use status::{ConversationStatus, Lifecycle, Timers, parse_duration, whole_number};
pub use widget::{Branding, FieldRule, Prechat, WidgetSettings};
pub use window::TemplateSend;

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
    /// A support agent, identified by the identity of its agent client token.
    Agent,
    /// An email address, reached over SMTP.
    Email,
    /// A Facebook Messenger page-scoped user id (PSID).
    Messenger,
    /// An Instagram-scoped user id (IGSID).
    Instagram,
    /// A Viber user id.
    Viber,
}

impl AddressType {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressType::Webchat => "webchat",
            AddressType::Tel => "tel",
            AddressType::Line => "line",
            AddressType::Whatsapp => "whatsapp",
            AddressType::Telegram => "telegram",
            AddressType::Agent => "agent",
            AddressType::Email => "email",
            AddressType::Messenger => "messenger",
            AddressType::Instagram => "instagram",
            AddressType::Viber => "viber",
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
    /// Who handles the conversation: `agent`, or `null` while it is unassigned.
    #[serde(default)]
    pub owner_type: Option<OwnerType>,
    /// The owning agent's identity (`null` while unassigned).
    #[serde(default)]
    pub owner_id: Option<String>,
    /// `status`, `snoozed_until`, `tm_status` (stored conversations without them read as open).
    #[serde(flatten, default)]
    pub lifecycle: Lifecycle,
    /// This conversation's own timers; a timer it leaves unset follows the tenant's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timers: Option<Timers>,
}

/// The kind of owner a conversation can have.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OwnerType {
    Agent,
}

impl Conversation {
    /// Whether an agent token of `identity` may see it: its own or an unassigned one.
    pub fn visible_to_agent(&self, identity: &str) -> bool {
        self.owner_id.as_deref().is_none_or(|o| o == identity)
    }

    /// Sets the owning agent (`None` = unassigned), keeping `owner_type` in step.
    pub fn set_owner(&mut self, agent: Option<String>) {
        self.owner_type = agent.as_ref().map(|_| OwnerType::Agent);
        self.owner_id = agent;
    }
}

/// A member of a conversation, reachable at `address`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Participant {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub tenant_id: Uuid,
    pub address: Address,
    /// The channel account `address` is reached through (`None` for webchat).
    #[serde(default)]
    pub account_id: Option<Uuid>,
    /// More addresses of the same person (e.g. their LINE id next to their phone number):
    /// inbound on any of them lands in this room.
    #[serde(default)]
    pub linked: Vec<Endpoint>,
    /// Where replies go: the endpoint this participant last wrote from (`None` = `address`).
    #[serde(default)]
    pub reply_via: Option<Endpoint>,
    /// The contact this participant is (every person on a channel or in webchat is one; agents
    /// are none). Set when the participant is added; a merge moves it to the surviving contact.
    #[serde(default)]
    pub contact_id: Option<Uuid>,
    /// Highest seq this participant reported as read.
    pub last_read_seq: u64,
    pub tm_create: DateTime<Utc>,
    /// Channel state kept for this participant, e.g. `email_thread`: the Message-IDs that
    /// outbound mail to it threads under.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// WhatsApp, Messenger, Instagram: when the 24-hour customer-service window of the endpoint
    /// it last wrote from closes (absent: none open; see `model::window`). Free-form sends
    /// after it are refused with `window_closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_expires_at: Option<DateTime<Utc>>,
}

impl Participant {
    /// Every endpoint of this participant, primary first.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let mut v = vec![Endpoint { address: self.address.clone(), account_id: self.account_id }];
        v.extend(self.linked.iter().cloned());
        v
    }

    /// The endpoint outbound messages to this participant use.
    pub fn reply_endpoint(&self) -> Endpoint {
        self.reply_via.clone().unwrap_or(Endpoint { address: self.address.clone(), account_id: self.account_id })
    }
}

/// An address together with the channel account it is reached through.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Endpoint {
    pub address: Address,
    #[serde(default)]
    pub account_id: Option<Uuid>,
}

/// `via` of a send: the account to deliver through, for participants reachable on it (the
/// others get the message where they last wrote, as always).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendVia {
    pub account_id: Uuid,
}

/// Delivery of one message to one participant over an outbound channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Delivery {
    pub participant_id: Uuid,
    pub account_id: Uuid,
    /// `tel`, `line`, `whatsapp`, `telegram`, `email`.
    pub channel: AddressType,
    pub to: String,
    pub status: MessageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
    pub tm_update: DateTime<Utc>,
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

/// An attachment: a URL the recipient can fetch, with its content type. A send may instead
/// name an upload (`{"media_id"}`, see `POST /v1.0/media`): the stored message then carries
/// the upload's signed `url`, `content_type`, `size` and `name` (`crate::media::attach`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Media {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub content_type: String,
    /// The id of a media the hub stores (an upload, or a re-hosted inbound media).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<Uuid>,
    /// Bytes, for a stored media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The file name it was uploaded with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A preview image: for a stored image, its signed thumbnail; for a video, what the sender
    /// gave (channels that show videos with a poster frame, like LINE, need one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
}

impl Media {
    /// A media the recipient fetches at `url` (not stored by the hub).
    pub fn link(url: impl Into<String>, content_type: impl Into<String>) -> Media {
        Media { url: url.into(), content_type: content_type.into(), ..Default::default() }
    }
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
    /// The channel it arrived on (`webchat`, `tel`, `line`…); `None` for API posts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<AddressType>,
    /// Outbound deliveries to channel participants and their status (each names the account
    /// and address it went out on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<Delivery>,
    /// Inbound: the account and address it came in on, when it came through a channel account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Endpoint>,
    /// `internal` for a private note (never shown to end users nor sent over a channel);
    /// absent for an ordinary (`public`) message.
    #[serde(default, skip_serializing_if = "Visibility::is_public")]
    pub visibility: Visibility,
    /// When its text was last edited (absent if never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted: it is then a tombstone (no text, no medias) that keeps its seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Sent as this WhatsApp template (its rendered body is `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSend>,
    /// Sent with this Messenger/Instagram message tag (outside the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// Who may see a message.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone in the conversation, on every channel.
    #[default]
    Public,
    /// A private note: API keys, operator and agent tokens only.
    Internal,
}

impl Visibility {
    pub fn is_public(&self) -> bool {
        *self == Visibility::Public
    }
}

impl MessageStatus {
    /// Progress order of a delivery; a report never moves a delivery backwards.
    fn rank(self) -> u8 {
        match self {
            MessageStatus::Queued | MessageStatus::Received => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Delivered | MessageStatus::Failed => 2,
        }
    }
}

impl Message {
    /// Whether it is a private note (see [`Visibility::Internal`]).
    pub fn is_internal(&self) -> bool {
        self.visibility == Visibility::Internal
    }

    /// Applies a delivery report; returns false when it would move the delivery backwards
    /// (late or duplicate callbacks) or change a final state. Outbound messages take the
    /// aggregate status of their deliveries.
    pub fn apply_delivery(&mut self, d: &Delivery) -> bool {
        match self.deliveries.iter_mut().find(|x| x.participant_id == d.participant_id) {
            Some(cur) => {
                if cur.status.rank() == 2 || d.status.rank() < cur.status.rank() || cur == d {
                    return false;
                }
                // An address erased meanwhile (`DELETE /contacts/{id}?erase=true`) stays erased.
                let erased = cur.to.is_empty();
                *cur = d.clone();
                if erased {
                    cur.to.clear();
                }
            }
            None => self.deliveries.push(d.clone()),
        }
        if self.direction == Direction::Outbound {
            let all = |s: MessageStatus| self.deliveries.iter().all(|d| d.status == s);
            self.status = if self.deliveries.iter().any(|d| d.status == MessageStatus::Failed) {
                MessageStatus::Failed
            } else if all(MessageStatus::Delivered) {
                MessageStatus::Delivered
            } else if self.deliveries.iter().all(|d| d.status.rank() >= 1) {
                MessageStatus::Sent
            } else {
                MessageStatus::Queued
            };
        }
        true
    }
}
