//! The customer-service window, as data.
//!
//! On WhatsApp, Messenger and Instagram a business may answer freely only within 24 hours of
//! the person's last message; after that WhatsApp takes only an approved template, Messenger
//! and Instagram only a message carrying a tag the page is allowed to use (`HUMAN_AGENT`…).
//! A channel participant keeps `window_expires_at`: the end of the window of the endpoint it
//! last wrote from (set by the inbound door from the provider's own timestamp). The delivery
//! planner (`channels::dispatch::plan`) asks [`open`] and the post path refuses a send no
//! channel recipient could take (`conversations::post`). Nothing here does I/O.

use super::{AddressType, DateTime, Endpoint, Participant, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a window stays open after the person's last message.
pub const WINDOW_HOURS: i64 = 24;

impl AddressType {
    /// Whether sends on this channel are bound by a customer-service window.
    pub fn has_window(self) -> bool {
        matches!(self, AddressType::Whatsapp | AddressType::Messenger | AddressType::Instagram)
    }
}

/// The end of the window a message sent at `sent_at` opens (a time in the future, from a
/// skewed provider clock, counts as now).
pub fn expires(sent_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    sent_at.unwrap_or(now).min(now) + chrono::Duration::hours(WINDOW_HOURS)
}

/// Whether a free-form send to `p` over `e` may go out at `now`: always on channels without a
/// window; on the others only over the endpoint `p` last wrote from, while its window is open
/// (an endpoint it never wrote from, or wrote from longer ago, has none open).
pub fn open(p: &Participant, e: &Endpoint, now: DateTime<Utc>) -> bool {
    if !e.address.kind.has_window() {
        return true;
    }
    let last = p.reply_endpoint();
    last.address.same_endpoint(&e.address)
        && last.account_id == e.account_id
        && p.window_expires_at.is_some_and(|t| t > now)
}

/// A WhatsApp template message: an approved template by name and language, with the values of
/// its body's `{{1}}`, `{{2}}`… placeholders in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSend {
    /// The template's name, as approved (`order_update`).
    pub name: String,
    /// Its language code (`en_US`).
    pub language: String,
    /// Values of the body's placeholders, in order.
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// The delivery error of a send that a closed window held back (never sent to the provider).
pub const WINDOW_CLOSED: &str = "window_closed";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;

    fn participant(kind: AddressType, expires: Option<DateTime<Utc>>) -> Participant {
        serde_json::from_value(serde_json::json!({"id": uuid::Uuid::nil(), "conversation_id": uuid::Uuid::nil(),
            "tenant_id": uuid::Uuid::nil(), "address": {"type": kind, "target": "1"}, "account_id": uuid::Uuid::nil(),
            "last_read_seq": 0, "tm_create": "2024-01-01T00:00:00Z", "window_expires_at": expires}))
        .unwrap()
    }

    #[test]
    fn windows_close_after_a_day_and_only_on_their_channels() {
        let now = crate::model::now();
        let e = |kind| Endpoint {
            address: Address { kind, target: "1".into(), name: String::new() },
            account_id: Some(uuid::Uuid::nil()),
        };
        let fresh = participant(AddressType::Whatsapp, Some(expires(Some(now), now)));
        assert!(open(&fresh, &e(AddressType::Whatsapp), now));
        let old = now - chrono::Duration::hours(25);
        let stale = participant(AddressType::Whatsapp, Some(expires(Some(old), now)));
        assert!(!open(&stale, &e(AddressType::Whatsapp), now));
        assert!(open(&participant(AddressType::Tel, None), &e(AddressType::Tel), now));
        let future = now + chrono::Duration::hours(5);
        assert_eq!(expires(Some(future), now), now + chrono::Duration::hours(24));
    }
}
