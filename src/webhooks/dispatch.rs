//! From events to deliveries, in two durable steps.
//!
//! `record` runs on the write path: an event some `notify` webhook of its tenant wants (as this
//! node's index says) goes into the outbox before the write is answered — for a message the
//! store's append script already put it there, in the same step as the message. The outbox
//! worker then `fan_out`s each event into one delivery record and one outbox entry per
//! matching webhook (as the index says *then*) and acknowledges the event. Nothing passes
//! through an in-process channel on the way, so nothing is lost to a lagging receiver or to a
//! crash after the write was acknowledged; a crash during a fan-out repeats it (at least once).
//! Next to it runs the index refresher, which re-reads subscriptions when the store's version
//! moved (changes made through another node).

use super::model::{Delivery, DeliveryStatus, Mode, OutboxEntry};
use crate::app::AppState;
use crate::error::Result;
use crate::model::now;
use crate::wire::{Event, EventKind};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Whether a `notify` webhook of `tenant` wants `kind` (one map lookup).
pub fn wanted(state: &AppState, tenant: Uuid, kind: EventKind) -> bool {
    state.webhooks.hooks(tenant).is_some_and(|h| h.hooks.iter().any(|w| w.mode == Mode::Notify && w.wants(kind)))
}

/// Puts the wanted ones of `events` into the outbox (one write), in order. Fails when the
/// outbox cannot be written; the caller's change is already made.
pub async fn record(state: &AppState, events: &[Event]) -> Result<()> {
    let wanted: Vec<Event> = events.iter().filter(|e| wanted(state, e.tenant_id, e.kind)).cloned().collect();
    if wanted.is_empty() {
        return Ok(());
    }
    state.webhooks.store.enqueue_events(&wanted).await?;
    state.webhooks.wake();
    Ok(())
}

/// One delivery per matching `notify` webhook of `ev`'s tenant. False when the session ended
/// before every one was queued (the event stays in the outbox, to be fanned out again).
pub(super) async fn fan_out(state: &AppState, token: &CancellationToken, ev: &Event) -> bool {
    let Some(hooks) = state.webhooks.hooks(ev.tenant_id) else { return true };
    let mut payload: Option<String> = None;
    for w in hooks.hooks.iter().filter(|w| w.mode == Mode::Notify && w.wants(ev.kind)) {
        let body = match &payload {
            Some(p) => p.clone(),
            None => match serde_json::to_string(ev) {
                Ok(p) => payload.insert(p).clone(),
                Err(e) => {
                    tracing::warn!(error = %e, kind = %ev.kind, "event not serializable; not delivered");
                    return true;
                }
            },
        };
        let at = now();
        let d = Delivery {
            id: Uuid::now_v7(),
            webhook_id: w.id,
            tenant_id: ev.tenant_id,
            event_id: ev.id,
            event_type: ev.kind,
            conversation_id: ev.conversation_id,
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            attempt_count: 0,
            next_retry_at: None,
            retry_until: horizon(state, at),
            payload: body,
            tm_create: at,
            tm_update: at,
        };
        while let Err(e) = queue(state, &d).await {
            tracing::warn!(error = %e.chain(), webhook = %w.id, event = %ev.id, "webhook delivery not queued yet");
            tokio::select! {
                _ = token.cancelled() => return false,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
    true
}

/// Keeps this node's webhook index current with changes made through other nodes.
pub(super) async fn refresh_loop(state: AppState) {
    let every = Duration::from_millis(state.config.webhooks.refresh_ms);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = state.webhooks.refresh().await {
            tracing::warn!(error = %e.chain(), "webhook index not refreshed");
        }
    }
}

/// When retries of a delivery queued at `at` stop.
pub(super) fn horizon(state: &AppState, at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    let secs = i64::try_from(state.config.webhooks.retry_horizon_secs).unwrap_or(i64::MAX / 1000);
    at + chrono::Duration::try_seconds(secs).unwrap_or(chrono::Duration::MAX)
}

/// Records `d` and puts it in the outbox (new deliveries and redeliveries alike).
pub(super) async fn queue(state: &AppState, d: &Delivery) -> Result<()> {
    let wh = &state.webhooks;
    wh.store.put_delivery(d, state.config.webhooks.deliveries_kept).await?;
    let entry = OutboxEntry {
        delivery_id: d.id,
        webhook_id: d.webhook_id,
        tenant_id: d.tenant_id,
        conversation_id: d.conversation_id,
    };
    wh.store.enqueue(&entry).await?;
    wh.wake.notify_one();
    Ok(())
}
