//! From events to deliveries: every event this node publishes becomes one delivery record and
//! one outbox entry per matching `notify` webhook of its tenant.
//!
//! One task reads `Broker::events()` and writes to the outbox sequentially, so entries of a
//! conversation enter the outbox in the order the events were published. It never calls a
//! webhook endpoint itself (the outbox workers do), so a slow endpoint cannot hold it up.
//! Next to it runs the index refresher, which re-reads subscriptions when the store's version
//! moved (changes made through another node).

use super::model::{Delivery, DeliveryStatus, Mode, OutboxEntry};
use crate::app::AppState;
use crate::broker::Event;
use crate::error::Result;
use crate::model::now;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

pub(super) async fn run(state: AppState, mut events: broadcast::Receiver<Event>) {
    loop {
        let ev = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            ev = events.recv() => ev,
        };
        match ev {
            Ok(ev) => fan_out(&state, &ev).await,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "webhook dispatcher fell behind; events were not queued for webhooks")
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn fan_out(state: &AppState, ev: &Event) {
    let Some(hooks) = state.webhooks.hooks(ev.tenant_id) else { return };
    let mut payload: Option<String> = None;
    for w in hooks.hooks.iter().filter(|w| w.mode == Mode::Notify && w.wants(ev.kind)) {
        let body = match &payload {
            Some(p) => p.clone(),
            None => match serde_json::to_string(ev) {
                Ok(p) => payload.insert(p).clone(),
                Err(e) => return tracing::warn!(error = %e, kind = %ev.kind, "event not serializable; not delivered"),
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
        if let Err(e) = queue(state, &d).await {
            tracing::warn!(error = %e.chain(), webhook = %w.id, event = %ev.id, "webhook delivery not queued");
        }
    }
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
