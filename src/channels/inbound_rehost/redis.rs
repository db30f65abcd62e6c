//! The Redis backend's [`RehostQueue`]: one durable stream (`{prefix}:rehost:{media}`, a
//! [`StreamQueue`]) shared by every node.
//!
//! Each node runs one pump: it claims new entries, and every half reclaim period takes over
//! entries another consumer held longer than [`reclaim_idle_ms`] (a node that died mid-round
//! or while a retry waited). An entry is acknowledged only once its round is over and the
//! next round, if any, is queued.

use super::{RehostQueue, reclaim_idle_ms, schedule};
use crate::app::AppState;
use crate::channels::inbound_media::Job;
use crate::error::{Error, Result};
use crate::redis::StreamQueue;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The re-hosting stream on Redis.
#[derive(Debug, Clone)]
pub struct RedisRehost {
    stream: Arc<StreamQueue>,
}

impl RedisRehost {
    pub fn new(stream: StreamQueue) -> RedisRehost {
        RedisRehost { stream: Arc::new(stream) }
    }
}

#[async_trait]
impl RehostQueue for RedisRehost {
    async fn push(&self, job: &Job) -> Result<bool> {
        let payload =
            serde_json::to_string(job).map_err(|e| Error::internal_from("re-hosting job not encodable", e))?;
        self.stream.push(&payload).await?;
        Ok(true)
    }

    fn start(&self, state: &AppState) {
        state.tasks.spawn(pump(state.clone(), self.stream.clone()));
    }

    async fn ack(&self, token: &str) -> Result<()> {
        self.stream.ack(token).await
    }
}

async fn pump(state: AppState, q: Arc<StreamQueue>) {
    let consumer = state.node_id.clone();
    let idle = reclaim_idle_ms(&state);
    let mut next_reclaim = tokio::time::Instant::now();
    loop {
        let mut entries = match q.claim(&consumer, 16).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e.chain(), "re-hosting stream unreadable; retrying");
                Vec::new()
            }
        };
        if tokio::time::Instant::now() >= next_reclaim {
            next_reclaim = tokio::time::Instant::now() + Duration::from_millis(idle / 2);
            match q.reclaim(&consumer, idle, 16).await {
                Ok(more) => entries.extend(more),
                Err(e) => tracing::warn!(error = %e.chain(), "re-hosting reclaim failed"),
            }
        }
        let idle_round = entries.is_empty();
        for (id, json) in entries {
            match serde_json::from_str::<Job>(&json) {
                Ok(mut job) => {
                    job.token = Some(id);
                    schedule(&state, job);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable re-hosting entry dropped");
                    let _ = q.ack(&id).await;
                }
            }
        }
        let pause = if idle_round { 100 } else { 0 };
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(pause)) => {}
        }
    }
}
