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
/// path (on Redis a PUBLISH and an XADD per event the sender no longer waits for). The task
/// takes what is queued, up to [`EVENT_BATCH`], and writes it as one batch (Redis: one
/// pipeline), so a burst of events costs a round trip per batch, not per event.
#[derive(Debug)]
pub struct EventQueue {
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Event>>>,
}

/// Most events the publisher writes in one batch.
pub const EVENT_BATCH: usize = 256;

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

/// `first` and the events queued behind it, up to `max` in all, in queue order.
fn drain(first: Event, rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>, max: usize) -> Vec<Event> {
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(e) => batch.push(e),
            Err(_) => break,
        }
    }
    batch
}

async fn publish_batch(state: &AppState, batch: &[Event]) {
    if let Err(e) = state.broker.publish_events(batch).await {
        tracing::warn!(error = %e.chain(), count = batch.len(), "events not published");
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
                    Some(e) => publish_batch(&st, &drain(e, &mut rx, EVENT_BATCH)).await,
                    None => return,
                },
                _ = st.shutdown.cancelled() => {
                    while let Ok(e) = rx.try_recv() {
                        publish_batch(&st, &drain(e, &mut rx, EVENT_BATCH)).await;
                    }
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::EventKind;

    #[test]
    fn a_batch_is_what_is_queued_in_order_and_bounded() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let tenant = uuid::Uuid::now_v7();
        let events: Vec<Event> = (0..7)
            .map(|i| Event::new(EventKind::MessageCreated, tenant, None, serde_json::json!({ "i": i })))
            .collect();
        for e in &events[1..] {
            tx.send(e.clone()).unwrap();
        }
        let first = drain(events[0].clone(), &mut rx, 4);
        let ids = |b: &[Event]| b.iter().map(|e| e.data.value()["i"].as_u64().unwrap()).collect::<Vec<_>>();
        assert_eq!(ids(&first), vec![0, 1, 2, 3]);
        let next = rx.try_recv().unwrap();
        assert_eq!(ids(&drain(next, &mut rx, 4)), vec![4, 5, 6]);
        // Nothing queued: a batch of one.
        assert_eq!(drain(events[0].clone(), &mut rx, 4).len(), 1);
    }
}
