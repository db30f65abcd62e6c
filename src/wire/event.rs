//! Events as outside consumers see them: the envelope and the closed set of event kinds.
//!
//! Owns the names on the wire (`message.created`, …) as one enum, so a typo is a compile
//! error and every consumer (webhooks, the Redis events channel, watchers) matches on the same
//! values. Does not own who receives an event (the broker and `webhooks` do).

use axum::extract::ws::Utf8Bytes;
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
    pub data: EventData,
    /// The `X-Request-Id` of the API request that caused it, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Event {
    pub fn new(kind: EventKind, tenant_id: Uuid, conversation_id: Option<Uuid>, data: impl Serialize) -> Event {
        Event::with_data(kind, tenant_id, conversation_id, EventData::of(&data))
    }

    /// An event whose `data` is already JSON (a stored message as the store wrote it).
    pub fn with_data(kind: EventKind, tenant_id: Uuid, conversation_id: Option<Uuid>, data: EventData) -> Event {
        Event {
            id: Uuid::now_v7(),
            kind,
            tenant_id,
            tm_create: crate::model::now(),
            conversation_id,
            data,
            request_id: crate::logging::current_request_id().filter(|r| !r.is_empty()),
        }
    }
}

/// An event's `data` as JSON text: written once where the event is made (for a new message,
/// the JSON the store already wrote for its frame) and shared, not copied, by every clone.
/// Envelopes embed it as it is (serde_json's `RawValue`), so no JSON tree is built for an
/// event on the post path; a consumer that reads the data parses it ([`EventData::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData(Utf8Bytes);

impl EventData {
    /// `value` written as JSON (`null` if it cannot be, as a map with non-string keys).
    pub fn of(value: &impl Serialize) -> EventData {
        EventData(serde_json::to_string(value).unwrap_or_else(|_| "null".into()).into())
    }

    /// JSON text as serde_json wrote it. Not checked here (the post path takes the store's
    /// text as it is): a text that is not JSON makes the event fail where it is serialized.
    pub fn from_json(json: impl Into<Utf8Bytes>) -> EventData {
        EventData(json.into())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The data read as a `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.as_str())
    }

    /// The data as a JSON tree (`null` if it is not JSON), for consumers that look inside.
    pub fn value(&self) -> serde_json::Value {
        self.parse().unwrap_or_default()
    }
}

impl Default for EventData {
    fn default() -> Self {
        EventData(Utf8Bytes::from_static("null"))
    }
}

impl Serialize for EventData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Checked (not copied) on the way out, so an envelope is always valid JSON.
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(self.as_str()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventData {
    /// Through a tree, as any deserializer can give one: an envelope is also read inside
    /// untagged enums (the webhook outbox's `Work`), where serde_json's `RawValue` is not.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(deserializer)?;
        Ok(EventData::of(&v))
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
    fn data_goes_out_as_written_and_reads_back() {
        let data = serde_json::json!({"text": "a \"quoted\" ünïcode\n", "n": [1, 2.5, null], "o": {}});
        let json = serde_json::to_string(&data).unwrap();
        let e = Event::with_data(EventKind::MessageCreated, Uuid::now_v7(), None, EventData::from_json(json.clone()));
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains(&format!("\"data\":{json}")), "{text}");
        let expected = serde_json::json!({
            "id": e.id, "type": "message.created", "tenant_id": e.tenant_id, "tm_create": e.tm_create, "data": data,
        });
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), expected);
        assert_eq!(serde_json::to_value(&e).unwrap(), expected);
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!((back.id, back.data.value()), (e.id, data));
        // Text that is not JSON never goes out as a broken envelope.
        let bad = Event { data: EventData::from_json("{\"oops\""), ..e };
        assert!(serde_json::to_string(&bad).is_err());
    }

    #[test]
    fn an_open_event_filled_in_is_the_event() {
        let mut e = Event::new(EventKind::MessageCreated, Uuid::now_v7(), Some(Uuid::now_v7()), ());
        e.request_id = Some(r#"x"data":null"#.into());
        let open = OpenEvent::around_data(&serde_json::to_string(&e).unwrap()).unwrap();
        let back: Event = serde_json::from_str(&open.fill(r#"{"seq":3}"#)).unwrap();
        assert_eq!((back.data.value(), back.request_id), (serde_json::json!({"seq": 3}), e.request_id));
    }
}
