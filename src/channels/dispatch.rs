//! From a stored message to outbound deliveries, and from delivery reports back to the message.
//!
//! `plan` runs on the post path before the append, so a message is stored with its deliveries
//! already `queued` (visible at once on REST and WebSocket); `enqueue` runs after the append
//! succeeded. `apply_delivery` is the one place a delivery changes state — from the outbox or
//! from a provider's status callback — and it announces the change to the room and to events.

use super::outbox::Job;
use crate::app::AppState;
use crate::broker::{Event, EventKind};
use crate::model::{Delivery, Message, MessageStatus, Participant, now};
use crate::wire::Publication;
use crate::wire::ServerFrame;
use uuid::Uuid;

/// One queued delivery per participant other than the author that is reachable over a
/// channel account (webchat participants get the message live instead).
pub fn plan(participants: &[Participant], author: Option<Uuid>) -> Vec<Delivery> {
    participants
        .iter()
        .filter(|p| Some(p.id) != author)
        .filter_map(|p| {
            let e = p.reply_endpoint();
            Some(Delivery {
                participant_id: p.id,
                account_id: e.account_id?,
                channel: e.address.kind,
                to: e.address.target,
                status: MessageStatus::Queued,
                provider_message_id: None,
                error: None,
                attempts: 0,
                tm_update: now(),
            })
        })
        .collect()
}

/// Hands every planned delivery of a freshly stored message to the outbox (before the sender
/// is acknowledged, so on Redis an acked message's deliveries are already durable).
pub async fn enqueue(state: &AppState, tenant: Uuid, message: &Message) {
    for d in &message.deliveries {
        state
            .outbox
            .enqueue(
                state,
                Job {
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
                    request_id: crate::logging::current_request_id().unwrap_or_default(),
                    token: None,
                },
            )
            .await;
    }
}

/// Records a delivery's new state; on change, tells the room (`message_updated` frame) and
/// outside consumers (`message.updated` event).
pub async fn apply_delivery(state: &AppState, tenant: Uuid, conversation: Uuid, message: Uuid, d: Delivery) {
    match state.channel_store.update_delivery(conversation, message, &d).await {
        Ok(Some(m)) => {
            let frame = ServerFrame::MessageUpdated { message: &m }.to_text();
            if let Err(e) = state.broker.publish(Publication::Ephemeral { room: conversation, frame }).await {
                tracing::warn!(error = %e, "message_updated frame not published");
            }
            crate::conversations::emit(state, Event::new(EventKind::MessageUpdated, tenant, Some(conversation), &m))
                .await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, %message, "delivery status not recorded"),
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
        Err(e) => return tracing::warn!(error = %e, "status callback not applied"),
    };
    let Ok(Some(m)) = state.store.get_message(r.conversation_id, r.message_id).await else { return };
    let Some(mut d) = m.deliveries.into_iter().find(|d| d.participant_id == r.participant_id) else { return };
    d.status = update.status;
    d.error.clone_from(&update.error);
    d.tm_update = now();
    apply_delivery(state, tenant, r.conversation_id, r.message_id, d).await;
}
