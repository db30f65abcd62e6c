//! The connection's room frames that are not history (typing, read receipts, presence), sent
//! to every node without holding up the connection's own frames.
//!
//! Publishing is a broker round trip (a Redis `PUBLISH`). Awaited inline, a stalled Redis held
//! the session for a whole command timeout per `typing` frame, and a `send` behind it waited
//! for that too, so its `unavailable` came after several timeouts instead of one. So a
//! session hands these frames to its own publisher task, which publishes them in order; the
//! queue is short, and a frame that finds it full (the broker is not keeping up) is dropped —
//! they are best-effort signals, and the next one replaces it.

use super::session::Session;
use crate::wire::Publication;
use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Ephemeral frames waiting for the broker, per connection.
const QUEUE: usize = 32;

impl Session {
    /// Queues `frame` for every subscriber of `room` on every node; never waits.
    pub(super) fn publish_ephemeral(&mut self, room: Uuid, frame: Utf8Bytes) {
        let tx = self.publisher.get_or_insert_with(|| spawn_publisher(&self.state));
        if tx.try_send(Publication::Ephemeral { room, frame }).is_err() {
            tracing::debug!(%room, "ephemeral frame dropped: the broker is not keeping up");
        }
    }
}

/// The publisher task: ends when the session drops its sender (after publishing what is
/// queued, e.g. the final `presence left`) or when the node shuts down.
fn spawn_publisher(state: &crate::app::AppState) -> mpsc::Sender<Publication> {
    let (tx, mut rx) = mpsc::channel::<Publication>(QUEUE);
    let (broker, shutdown) = (state.broker.clone(), state.shutdown.clone());
    state.tasks.spawn(async move {
        loop {
            let p = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = rx.recv() => match p {
                    Some(p) => p,
                    None => return,
                },
            };
            if let Err(e) = broker.publish(p).await {
                tracing::warn!(error = %e, "ephemeral frame not published");
            }
        }
    });
    tx
}
