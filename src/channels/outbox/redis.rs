//! The Redis backend's [`JobQueue`]: one durable stream (`{prefix}:outbox:{channels}`, a
//! [`StreamQueue`]) shared by every node.
//!
//! A burst's jobs are written with one pipelined round trip. Each node runs one pump: it
//! claims entries for its own workers, and every half reclaim period takes over entries
//! another node held longer than [`reclaim_idle_ms`] (a node that died mid-send). An entry is
//! acknowledged only once its delivery is settled, so delivery is at least once.

use super::{Job, JobQueue, reclaim_idle_ms, schedule};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::redis::StreamQueue;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The outbox stream on Redis.
#[derive(Debug, Clone)]
pub struct RedisQueue {
    stream: Arc<StreamQueue>,
}

impl RedisQueue {
    pub fn new(stream: StreamQueue) -> RedisQueue {
        RedisQueue { stream: Arc::new(stream) }
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    fn durable(&self) -> bool {
        true
    }

    async fn push(&self, jobs: &[Job]) -> Result<bool> {
        let payloads = jobs
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::internal_from("outbox job not encodable", e))?;
        self.stream.push_many(&payloads).await?;
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
        let mut entries = match q.claim(&consumer, 64).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e.chain(), "outbox stream unreadable; retrying");
                Vec::new()
            }
        };
        if tokio::time::Instant::now() >= next_reclaim {
            next_reclaim = tokio::time::Instant::now() + std::time::Duration::from_millis(idle / 2);
            match q.reclaim(&consumer, idle, 64).await {
                Ok(more) => entries.extend(more),
                Err(e) => tracing::warn!(error = %e.chain(), "outbox reclaim failed"),
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
                    tracing::warn!(error = %e, "undecodable outbox entry dropped");
                    let _ = q.ack(&id).await;
                }
            }
        }
        let pause = if idle_round { 50 } else { 0 };
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
        }
    }
}
