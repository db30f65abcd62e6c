//! Events as the rest of the system announces them: the node's one ordered event queue and
//! `emit`, which puts an event into the durable webhook outbox (when a webhook wants it) and
//! queues it for the broker.
//!
//! It sits between `webhooks` and `broker` below and every writer above (`channels`'
//! delivery reports, `conversations`, `agents`, `api`), so a writer on any floor announces
//! the same way. It owns no event kinds (those are in `wire`) and no delivery (that is
//! `webhooks`' outbox and the broker's subscribers).

use crate::app::AppState;
use crate::wire::Event;

/// Events on their way to the broker: written by every request, read by one task per node,
/// so events leave in the order they were emitted without a broker round trip on the write
/// path (on Redis that is a PUBLISH and an XADD per event the sender no longer waits for).
#[derive(Debug)]
pub struct EventQueue {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Event>>>,
}

impl Default for EventQueue {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        EventQueue { tx, rx: std::sync::Mutex::new(Some(rx)) }
    }
}

/// Puts `event` into the webhook outbox when a webhook wants it (durably, before the caller
/// answers) and queues it for publishing; a failure is logged and never fails the write that
/// caused it.
pub async fn emit(state: &AppState, event: Event) {
    if let Err(e) = crate::webhooks::record(state, std::slice::from_ref(&event)).await {
        tracing::warn!(error = %e, kind = %event.kind, "event not queued for webhooks");
    }
    announce(state, event).await;
}

/// Queues `event` for publishing only (it is in the webhook outbox already, or must not go
/// there). Before the publisher task runs (tools, tests building state only) it publishes
/// inline.
pub(crate) async fn announce(state: &AppState, event: Event) {
    let started = state.events.rx.lock().map(|rx| rx.is_none()).unwrap_or(true);
    if !started {
        return publish(state, &event).await;
    }
    if let Err(e) = state.events.tx.send(event) {
        publish(state, &e.0).await;
    }
}

async fn publish(state: &AppState, event: &Event) {
    if let Err(e) = state.broker.publish_event(event).await {
        tracing::warn!(error = %e.chain(), kind = %event.kind, "event not published");
    }
}

/// Starts the node's event publisher; on shutdown it publishes what is queued, then stops.
pub fn start_event_publisher(state: &AppState) {
    let Some(mut rx) = state.events.rx.lock().ok().and_then(|mut r| r.take()) else { return };
    let st = state.clone();
    state.tasks.spawn(async move {
        loop {
            tokio::select! {
                biased;
                e = rx.recv() => match e {
                    Some(e) => publish(&st, &e).await,
                    None => return,
                },
                _ = st.shutdown.cancelled() => {
                    while let Ok(e) = rx.try_recv() {
                        publish(&st, &e).await;
                    }
                    return;
                }
            }
        }
    });
}
