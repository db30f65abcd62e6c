//! The customer-service window on the post path: what lifts it for one send, and when a send
//! is refused.
//!
//! The data and the rule of one endpoint are `model::window`; the choice of endpoint per
//! participant is `channels::dispatch::plan`. This module owns the two decisions around them:
//! which endpoints a send's WhatsApp `template` or Messenger/Instagram `tag` lifts the window
//! for (a tag only on an account whose `message_tags` allow it), and the room rule — a send
//! from the API, an agent or a chat user is refused with 422 `window_closed` when it has
//! channel recipients and a closed window holds back every one of them (so a room with a
//! single WhatsApp recipient learns it synchronously). With several channel recipients of
//! which some can take it, the message is stored, goes to those, and the others' deliveries
//! are `failed` with error `window_closed` at once (visible in the 201 answer). Messages that
//! came in over a channel are never refused (the provider would retry them forever).

use super::PostRequest;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::{AddressType, Delivery, Endpoint, MessageStatus, Participant, window};
use uuid::Uuid;

/// Most characters a message tag may have (Meta's are short upper-case words).
const MAX_TAG: usize = 64;

/// Whether `tag` is shaped like a Meta message tag (`HUMAN_AGENT`).
pub fn valid_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.len() <= MAX_TAG && tag.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// What lifts the window for `req`: its template lifts it on WhatsApp, its tag on the
/// Messenger/Instagram accounts (among `participants`' endpoints) that allow that tag.
pub struct Lift {
    template: bool,
    tagged: Vec<Uuid>,
}

impl Lift {
    pub async fn of(state: &AppState, req: &PostRequest, participants: &[Participant]) -> Result<Lift> {
        if let Some(t) = &req.tag
            && !valid_tag(t)
        {
            return Err(Error::invalid("invalid_tag", "tag must be a message tag such as HUMAN_AGENT"));
        }
        let mut tagged = Vec::new();
        if let Some(tag) = &req.tag {
            let meta = |e: &Endpoint| matches!(e.address.kind, AddressType::Messenger | AddressType::Instagram);
            let ids = participants.iter().flat_map(|p| p.endpoints()).filter(meta).filter_map(|e| e.account_id);
            for id in ids {
                if tagged.contains(&id) {
                    continue;
                }
                let account = state.accounts.get(state.channel_store.as_ref(), id).await?;
                if account.is_some_and(|a| a.message_tags.iter().any(|t| t == tag)) {
                    tagged.push(id);
                }
            }
        }
        Ok(Lift { template: req.template.is_some(), tagged })
    }

    /// Whether a send over `e` may go out whatever its window.
    pub fn lifts(&self, e: &Endpoint) -> bool {
        match e.address.kind {
            AddressType::Whatsapp => self.template,
            AddressType::Messenger | AddressType::Instagram => e.account_id.is_some_and(|a| self.tagged.contains(&a)),
            _ => false,
        }
    }
}

/// The room rule (module docs): `Err(window_closed)` when every channel delivery of a send
/// that did not come in over a channel was held back by a closed window.
pub fn check(req: &PostRequest, deliveries: &[Delivery], participants: &[Participant]) -> Result<()> {
    let from_channel =
        req.via.is_some() || matches!(&req.author, super::Author::Participant(p) if p.account_id.is_some());
    let held = |d: &&Delivery| d.status == MessageStatus::Failed && d.error.as_deref() == Some(window::WINDOW_CLOSED);
    if from_channel || deliveries.is_empty() || !deliveries.iter().all(|d| held(&d)) {
        return Ok(());
    }
    let why: Vec<String> = deliveries
        .iter()
        .filter_map(|d| participants.iter().find(|p| p.id == d.participant_id).map(|p| (d, p)))
        .map(|(d, p)| {
            let until =
                p.window_expires_at.map_or("never opened".to_string(), |t| format!("closed at {}", t.to_rfc3339()));
            let allowed = match d.channel {
                AddressType::Whatsapp => "a WhatsApp `template` (see GET /v1.0/conversation_accounts/{id}/templates)",
                _ => "a `tag` the account's `message_tags` allow (e.g. HUMAN_AGENT)",
            };
            format!("{} {} ({until}): only {allowed} may be sent", d.channel.as_str(), d.to)
        })
        .collect();
    Err(Error::invalid(
        window::WINDOW_CLOSED,
        format!("the 24-hour customer-service window is closed: {}", why.join("; ")),
    ))
}

/// After an inbound message over `endpoint` sent at `sent_at`: `p`'s window moves to the one
/// this message opened (never backwards for the same endpoint: a late retry of an old
/// webhook keeps a newer window); off a windowed channel, `p` has none. `true` on change.
pub fn after_inbound(p: &mut Participant, endpoint: &Endpoint, sent_at: Option<chrono::DateTime<chrono::Utc>>) -> bool {
    let now = crate::model::now();
    let last = p.reply_endpoint();
    let same = last.address.same_endpoint(&endpoint.address) && last.account_id == endpoint.account_id;
    let new = endpoint.address.kind.has_window().then(|| window::expires(sent_at, now));
    let new = match (new, p.window_expires_at) {
        (Some(n), Some(old)) if same => Some(n.max(old)),
        (n, _) => n,
    };
    let changed = new != p.window_expires_at;
    p.window_expires_at = new;
    changed
}
