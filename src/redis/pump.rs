//! The worker loop of every durable queue on a [`StreamQueue`] (the channel outbox, the media
//! re-hosting queue): claim new entries, every half reclaim period take over entries another
//! consumer held too long (a node that died mid-job), decode each and hand it on.
//!
//! Owns the loop only. What a job does, and when its entry is acknowledged, belong to the
//! queue's owner; an entry that does not decode is logged and acknowledged here, so one bad
//! entry can never block a queue.

use super::StreamQueue;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a node drains one queue.
#[derive(Debug, Clone)]
pub struct Pump {
    /// This node's consumer name in the group.
    pub consumer: String,
    /// Entries claimed (and reclaimed) per round.
    pub batch: usize,
    /// An entry held longer than this by another consumer is taken over.
    pub reclaim_idle_ms: u64,
    /// The wait after a round that found nothing.
    pub idle_pause_ms: u64,
    /// The queue's name in logs.
    pub what: &'static str,
}

/// Runs until `shutdown`: every decoded job goes to `each` with its entry id (the token its
/// owner acknowledges it with).
pub async fn pump<T, F>(q: Arc<StreamQueue>, p: Pump, shutdown: CancellationToken, mut each: F)
where
    T: DeserializeOwned,
    F: FnMut(T, String) + Send,
{
    let mut next_reclaim = tokio::time::Instant::now();
    loop {
        let mut entries = match q.claim(&p.consumer, p.batch).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(queue = p.what, error = %e.chain(), "queue stream unreadable; retrying");
                Vec::new()
            }
        };
        if tokio::time::Instant::now() >= next_reclaim {
            next_reclaim = tokio::time::Instant::now() + Duration::from_millis(p.reclaim_idle_ms / 2);
            match q.reclaim(&p.consumer, p.reclaim_idle_ms, p.batch).await {
                Ok(more) => entries.extend(more),
                Err(e) => tracing::warn!(queue = p.what, error = %e.chain(), "queue reclaim failed"),
            }
        }
        let idle_round = entries.is_empty();
        for (id, json) in entries {
            match serde_json::from_str::<T>(&json) {
                Ok(job) => each(job, id),
                Err(e) => {
                    tracing::warn!(queue = p.what, error = %e, "undecodable queue entry dropped");
                    let _ = q.ack(&id).await;
                }
            }
        }
        let pause = if idle_round { p.idle_pause_ms } else { 0 };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(pause)) => {}
        }
    }
}
