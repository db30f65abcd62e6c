//! Events as outside consumers see them: the envelope and the closed set of event kinds.
//!
//! Owns the names on the wire (`message.created`, …) as one enum, so a typo is a compile
//! error and every consumer (webhooks, the Redis events channel, watchers) matches on the same
//! values. Does not own who receives an event (the broker and `webhooks` do).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every kind of event. The serde names are the public wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    #[serde(rename = "conversation.created")]
    ConversationCreated,
    #[serde(rename = "conversation.updated")]
    ConversationUpdated,
    #[serde(rename = "conversation.deleted")]
    ConversationDeleted,
    #[serde(rename = "participant.added")]
    ParticipantAdded,
    #[serde(rename = "participant.updated")]
    ParticipantUpdated,
    #[serde(rename = "participant.removed")]
    ParticipantRemoved,
    #[serde(rename = "message.created")]
    MessageCreated,
    #[serde(rename = "message.updated")]
    MessageUpdated,
    /// A message became a tombstone (`DELETE …/messages/{id}`).
    #[serde(rename = "message.deleted")]
    MessageDeleted,
    #[serde(rename = "account.created")]
    AccountCreated,
    #[serde(rename = "account.updated")]
    AccountUpdated,
    #[serde(rename = "account.deleted")]
    AccountDeleted,
    #[serde(rename = "contact.created")]
    ContactCreated,
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "contact.deleted")]
    ContactDeleted,
    /// Another contact was merged into this one (`data`: the survivor and `merged_id`).
    #[serde(rename = "contact.merged")]
    ContactMerged,
    /// A contact was erased on request (`data`: only its id).
    #[serde(rename = "contact.erased")]
    ContactErased,
    /// The one pre-event: intercept webhooks are asked before a message is stored.
    #[serde(rename = "message.creating")]
    MessageCreating,
}

impl EventKind {
    /// The kinds `notify` webhooks can subscribe to (every kind but the pre-event).
    pub const NOTIFY: &[EventKind] = &[
        EventKind::ConversationCreated,
        EventKind::ConversationUpdated,
        EventKind::ConversationDeleted,
        EventKind::ParticipantAdded,
        EventKind::ParticipantUpdated,
        EventKind::ParticipantRemoved,
        EventKind::MessageCreated,
        EventKind::MessageUpdated,
        EventKind::MessageDeleted,
        EventKind::AccountCreated,
        EventKind::AccountUpdated,
        EventKind::AccountDeleted,
        EventKind::ContactCreated,
        EventKind::ContactUpdated,
        EventKind::ContactDeleted,
        EventKind::ContactMerged,
        EventKind::ContactErased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ConversationCreated => "conversation.created",
            EventKind::ConversationUpdated => "conversation.updated",
            EventKind::ConversationDeleted => "conversation.deleted",
            EventKind::ParticipantAdded => "participant.added",
            EventKind::ParticipantUpdated => "participant.updated",
            EventKind::ParticipantRemoved => "participant.removed",
            EventKind::MessageCreated => "message.created",
            EventKind::MessageUpdated => "message.updated",
            EventKind::MessageDeleted => "message.deleted",
            EventKind::AccountCreated => "account.created",
            EventKind::AccountUpdated => "account.updated",
            EventKind::AccountDeleted => "account.deleted",
            EventKind::ContactCreated => "contact.created",
            EventKind::ContactUpdated => "contact.updated",
            EventKind::ContactDeleted => "contact.deleted",
            EventKind::ContactMerged => "contact.merged",
            EventKind::ContactErased => "contact.erased",
            EventKind::MessageCreating => "message.creating",
        }
    }

    /// The kind named `name` on the wire, if any.
    pub fn parse(name: &str) -> Option<EventKind> {
        Self::NOTIFY.iter().copied().chain([EventKind::MessageCreating]).find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as outside consumers see it: `{id, type, tenant_id, tm_create, data}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub tenant_id: Uuid,
    pub tm_create: chrono::DateTime<chrono::Utc>,
    /// The conversation it concerns, for per-conversation ordering (absent for account events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The `X-Request-Id` of the API request that caused it, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Event {
    pub fn new(kind: EventKind, tenant_id: Uuid, conversation_id: Option<Uuid>, data: impl Serialize) -> Event {
        Event {
            id: Uuid::now_v7(),
            kind,
            tenant_id,
            tm_create: crate::model::now(),
            conversation_id,
            data: serde_json::to_value(data).unwrap_or_default(),
            request_id: crate::logging::current_request_id().filter(|r| !r.is_empty()),
        }
    }
}

/// A JSON document with a hole where a not-yet-stored message goes: `head`, the message JSON
/// (with the seq the store assigns), `tail`. The Redis append script writes webhook outbox
/// entries this way, in the same step as the message (`crate::webhooks::open_outbox_event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEvent {
    pub head: String,
    pub tail: String,
}

impl OpenEvent {
    /// Splits `json` at its one `"data":null` (serde writes `data` before `request_id`, and a
    /// string value can only hold it escaped, so the first match is the field).
    pub fn around_data(json: &str) -> Option<OpenEvent> {
        const HOLE: &str = "\"data\":null";
        let at = json.find(HOLE)?;
        let head = format!("{}\"data\":", &json[..at]);
        Some(OpenEvent { head, tail: json[at + HOLE.len()..].to_string() })
    }

    /// The document with `data` filled in.
    pub fn fill(&self, data: &str) -> String {
        format!("{}{}{}", self.head, data, self.tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for k in EventKind::NOTIFY.iter().copied().chain([EventKind::MessageCreating]) {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), k);
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("message.exploded"), None);
    }

    #[test]
    fn an_open_event_filled_in_is_the_event() {
        let mut e = Event::new(EventKind::MessageCreated, Uuid::now_v7(), Some(Uuid::now_v7()), ());
        e.request_id = Some(r#"x"data":null"#.into());
        let open = OpenEvent::around_data(&serde_json::to_string(&e).unwrap()).unwrap();
        let back: Event = serde_json::from_str(&open.fill(r#"{"seq":3}"#)).unwrap();
        assert_eq!((back.data, back.request_id), (serde_json::json!({"seq": 3}), e.request_id));
    }
}
