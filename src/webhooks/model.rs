//! The nouns of customer webhooks: subscriptions, their secrets, deliveries and attempts, and
//! the outbox entries that point workers at pending deliveries. Plain data, no I/O.

use crate::wire::{Event, EventKind, OpenEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `notify`: told after the fact, from the outbox. `intercept`: asked before a message is stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Notify,
    Intercept,
}

/// What an intercept webhook's timeout or error means for the message.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Store the message as it is (fail open).
    #[default]
    Allow,
    /// Refuse the message with `rejected_by_webhook` (fail closed).
    Reject,
}

/// A signing secret. `Debug` never shows it, so it cannot leak through a log line.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_***")
    }
}

impl Secret {
    /// A fresh `whsec_` + 32 random alphanumerics (about 190 bits).
    pub fn generate() -> Secret {
        Secret(crate::auth::random_key("whsec_"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A tenant's subscription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Webhook {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    /// Event types, or `["*"]` for all of them.
    pub events: Vec<String>,
    pub mode: Mode,
    /// Only meaningful for `intercept`.
    pub on_failure: OnFailure,
    pub description: String,
    pub secret: Secret,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_secret: Option<Secret>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub tm_create: DateTime<Utc>,
    pub tm_update: DateTime<Utc>,
}

impl Webhook {
    /// True when this webhook subscribed to `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.iter().any(|e| e == "*" || e == kind.as_str())
    }

    /// The secrets that sign a request made at `at`: the current one, then the previous one
    /// while its grace period lasts.
    pub fn signing_secrets(&self, at: DateTime<Utc>) -> Vec<&str> {
        let mut v = vec![self.secret.expose()];
        if let (Some(p), Some(until)) = (&self.previous_secret, self.previous_secret_expires_at)
            && at < until
        {
            v.push(p.expose());
        }
        v
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Queued, in flight, or waiting for its next retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// The endpoint answered a 4xx other than 408/429 (or a 3xx): not retried.
    Failed,
    /// Retries ran past `webhooks.retry_horizon_secs`.
    Dead,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Timeout, connection error, refused target…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// Attempts kept on a delivery record (the newest; `attempt_count` has the total).
pub const MAX_ATTEMPTS_KEPT: usize = 50;

/// One event to one webhook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub tenant_id: Uuid,
    pub event_id: Uuid,
    pub event_type: EventKind,
    pub conversation_id: Option<Uuid>,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    pub attempt_count: u32,
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Retries stop (→ `dead`) after this instant; reset by a redelivery.
    pub retry_until: DateTime<Utc>,
    /// The exact request body (the event JSON), identical on every attempt.
    pub payload: String,
    pub tm_create: DateTime<Utc>,
    pub tm_update: DateTime<Utc>,
}

impl Delivery {
    pub fn record(&mut self, a: Attempt) {
        self.attempt_count = self.attempt_count.saturating_add(1);
        self.attempts.push(a);
        if self.attempts.len() > MAX_ATTEMPTS_KEPT {
            let extra = self.attempts.len() - MAX_ATTEMPTS_KEPT;
            self.attempts.drain(..extra);
        }
    }
}

/// A pointer at a pending delivery in the outbox. Entries of one lane — the same webhook and
/// conversation (or the webhook's conversation-less events) — are worked strictly in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxEntry {
    pub delivery_id: Uuid,
    pub webhook_id: Uuid,
    pub tenant_id: Uuid,
    pub conversation_id: Option<Uuid>,
}

/// What the outbox holds. An `Event` is written with the change that caused it (for a message,
/// by the append itself) and is fanned out by the outbox worker into one `Delivery` per
/// matching webhook, so an event that reached the outbox is never lost to a crash or a lagging
/// in-process channel. JSON: `{"event": {...}}` or the `OutboxEntry` fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Work {
    Event { event: Event },
    Delivery(OutboxEntry),
}

/// Outbox work handed to this node; `token` acknowledges it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub token: String,
    pub work: Work,
}

/// `event`'s outbox entry with a hole for its `data` (a message the store is about to number).
pub fn open_outbox_event(event: &Event) -> Option<OpenEvent> {
    let shell = Work::Event { event: Event { data: Default::default(), ..event.clone() } };
    OpenEvent::around_data(&serde_json::to_string(&shell).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_work_round_trips_both_kinds() {
        let ev = Event::new(EventKind::MessageCreated, Uuid::now_v7(), None, serde_json::json!({"seq": 1}));
        let open = open_outbox_event(&ev).unwrap();
        let Work::Event { event } = serde_json::from_str(&open.fill(r#"{"seq":7}"#)).unwrap() else { panic!() };
        assert_eq!((event.id, event.data.value()), (ev.id, serde_json::json!({"seq": 7})));
        let entry = OutboxEntry {
            delivery_id: Uuid::now_v7(),
            webhook_id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            conversation_id: None,
        };
        let json = serde_json::to_string(&Work::Delivery(entry.clone())).unwrap();
        assert!(matches!(serde_json::from_str(&json).unwrap(), Work::Delivery(e) if e == entry));
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Secret::generate();
        assert!(s.expose().starts_with("whsec_") && s.expose().len() == 38);
        assert!(!format!("{s:?}").contains(&s.expose()[6..]));
    }
}
