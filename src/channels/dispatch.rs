//! From a stored message to outbound deliveries, and from delivery reports back to the message.
//!
//! `plan` runs on the post path before the append, so a message is stored with its deliveries
//! already `queued` (visible at once on REST and WebSocket); `enqueue` runs after the append
//! succeeded, once per burst of messages. `apply_delivery` is the one place a delivery changes
//! state — from the outbox or from a provider's status callback — and it announces the change
//! to the room and to events.

use super::outbox::Job;
use crate::app::AppState;
use crate::broker::{Event, EventKind};
use crate::model::{Delivery, Endpoint, Message, MessageStatus, Participant, now, window};
use crate::wire::Publication;
use crate::wire::ServerFrame;
use uuid::Uuid;

/// One queued delivery per participant other than the author that is reachable over a
/// channel account (webchat participants get the message live instead): through `via` when
/// the sender named an account the participant has an address on, else where it last wrote.
///
/// The customer-service window (`model::window`): when that endpoint's window is closed and
/// `lifted` (the send carries a template or an allowed tag for it) does not apply, another
/// endpoint of the person that can take it is used instead (their SMS number next to a
/// WhatsApp whose window closed) — unless the sender named the account. With none, the
/// delivery is planned `failed` with error `window_closed` and never reaches the provider.
pub fn plan(
    participants: &[Participant],
    author: Option<Uuid>,
    via: Option<Uuid>,
    lifted: &dyn Fn(&Endpoint) -> bool,
) -> Vec<Delivery> {
    let at = now();
    participants
        .iter()
        .filter(|p| Some(p.id) != author)
        .filter_map(|p| {
            let named = via.and_then(|a| p.endpoints().into_iter().find(|e| e.account_id == Some(a)));
            let may = |e: &Endpoint| e.account_id.is_some() && (window::open(p, e, at) || lifted(e));
            let e = match named {
                Some(e) => e,
                None => {
                    let last = p.reply_endpoint();
                    if may(&last) { last } else { p.endpoints().into_iter().find(|x| may(x)).unwrap_or(last) }
                }
            };
            let held = !may(&e);
            Some(Delivery {
                participant_id: p.id,
                account_id: e.account_id?,
                channel: e.address.kind,
                to: e.address.target,
                status: if held { MessageStatus::Failed } else { MessageStatus::Queued },
                provider_message_id: None,
                error: held.then(|| window::WINDOW_CLOSED.to_string()),
                attempts: 0,
                tm_update: at,
            })
        })
        .collect()
}

/// The outbox jobs of every planned delivery of a freshly stored message.
pub fn jobs(tenant: Uuid, message: &Message) -> Vec<Job> {
    let request_id = crate::logging::current_request_id().unwrap_or_default();
    message
        .deliveries
        .iter()
        // A delivery a closed window held back is settled already: nothing to send.
        .filter(|d| d.status == MessageStatus::Queued)
        .map(|d| Job {
            tenant,
            conversation_id: message.conversation_id,
            message_id: message.id,
            participant_id: d.participant_id,
            account_id: d.account_id,
            channel: d.channel,
            to: d.to.clone(),
            text: message.text.clone(),
            medias: message.medias.clone(),
            attempt: 0,
            pieces_sent: 0,
            provider_ids: Vec::new(),
            not_before_ms: 0,
            request_id: request_id.clone(),
            tag: message.tag.clone(),
            template: message.template.clone(),
            token: None,
        })
        .collect()
}

/// Hands every planned delivery of freshly stored messages to the outbox in one write (one
/// pipeline on Redis), in order, before the sender is acknowledged: on Redis an acked
/// message's deliveries are already durable.
pub async fn enqueue<'a>(state: &AppState, messages: impl IntoIterator<Item = (Uuid, &'a Message)>) {
    let jobs: Vec<Job> = messages.into_iter().flat_map(|(tenant, m)| jobs(tenant, m)).collect();
    state.outbox.enqueue_many(state, jobs).await;
}

/// Records a delivery's new state; on change, tells the room (`message_updated` frame) and
/// outside consumers (`message.updated` event).
pub async fn apply_delivery(state: &AppState, tenant: Uuid, conversation: Uuid, message: Uuid, d: Delivery) {
    match state.channel_store.update_delivery(conversation, message, &d).await {
        Ok(Some(m)) => {
            let frame = ServerFrame::MessageUpdated { message: &m }.to_text();
            if let Err(e) = state.broker.publish(Publication::Ephemeral { room: conversation, frame }).await {
                tracing::warn!(error = %e.chain(), "message_updated frame not published");
            }
            crate::events::emit(state, Event::new(EventKind::MessageUpdated, tenant, Some(conversation), &m)).await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e.chain(), %message, "delivery status not recorded"),
    }
}

/// A provider's delivery report for one of our messages.
pub async fn on_status(state: &AppState, tenant: Uuid, account: Uuid, update: &super::StatusUpdate) {
    let r = match state.channel_store.provider_ref(account, &update.provider_message_id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::debug!(id = %update.provider_message_id, "status for a message we do not know; ignored");
            return;
        }
        Err(e) => return tracing::warn!(error = %e.chain(), "status callback not applied"),
    };
    let Ok(Some(m)) = state.store.get_message(r.conversation_id, r.message_id).await else { return };
    let Some(mut d) = m.deliveries.into_iter().find(|d| d.participant_id == r.participant_id) else { return };
    d.status = update.status;
    d.error.clone_from(&update.error);
    d.tm_update = now();
    apply_delivery(state, tenant, r.conversation_id, r.message_id, d).await;
}

/// A provider's read receipt: the peer's read marker in its room moves up to the message it
/// names, or to our last message sent before its watermark, and the room is told (`read`
/// frame, as when a chat client reads). A receipt for nothing we know is ignored.
pub async fn on_read(state: &AppState, account: uuid::Uuid, r: &super::ReadReceipt) {
    let found = match read_position(state, account, r).await {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(e) => return tracing::warn!(error = %e.chain(), "read receipt not applied"),
    };
    let (conversation, participant, seq) = found;
    if let Err(e) = state.store.mark_read(conversation, participant, seq).await {
        return tracing::warn!(error = %e.chain(), "read marker not stored");
    }
    let identity = r.from.target.as_str();
    // Staff see the peer's address; visitors' sockets never get identities (see `ws::commands`).
    let (conversation_id, participant_id) = (conversation, Some(participant));
    let staff = ServerFrame::Read { conversation_id, participant_id, identity: Some(identity), seq }.to_text();
    let public = ServerFrame::Read { conversation_id, participant_id, identity: None, seq }.to_text();
    if let Err(e) = state.broker.publish(Publication::Audience { room: conversation, staff, public }).await {
        tracing::warn!(error = %e.chain(), "read frame not published");
    }
}

/// `(conversation, participant, seq)` a read receipt reaches.
async fn read_position(
    state: &AppState,
    account: Uuid,
    r: &super::ReadReceipt,
) -> crate::error::Result<Option<(Uuid, Uuid, u64)>> {
    if let Some(id) = &r.provider_message_id {
        let Some(d) = state.channel_store.provider_ref(account, id).await? else { return Ok(None) };
        let m = state.store.get_message(d.conversation_id, d.message_id).await?;
        return Ok(m.map(|m| (d.conversation_id, d.participant_id, m.seq)));
    }
    let (Some(watermark), Some(b)) = (r.watermark, state.channel_store.binding(account, &r.from).await?) else {
        return Ok(None);
    };
    let recent = crate::store::SeqRange { after: None, before: None, limit: 100 };
    let seq = state
        .store
        .messages(b.conversation_id, recent)
        .await?
        .iter()
        .rev()
        .find_map(|m| (m.author != Some(b.participant_id) && m.tm_create <= watermark).then_some(m.seq));
    Ok(seq.map(|s| (b.conversation_id, b.participant_id, s)))
}
