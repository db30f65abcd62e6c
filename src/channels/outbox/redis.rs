//! The Redis backend's [`JobQueue`]: one durable stream (`{prefix}:outbox:{channels}`, a
//! [`StreamQueue`]) shared by every node.
//!
//! A burst's jobs are written with one pipelined round trip. Each node runs one pump
//! (`channels::spawn_pump`): it claims entries for its own workers, and every half reclaim
//! period takes over entries another node held longer than `channels::reclaim_idle_ms` (a
//! node that died mid-send). An entry is acknowledged only once its delivery is settled, so
//! delivery is at least once.

use super::{Job, JobQueue, schedule};
use crate::app::AppState;
use crate::channels::spawn_pump;
use crate::error::{Error, Result};
use crate::redis::StreamQueue;
use async_trait::async_trait;
use std::sync::Arc;

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
        let st = state.clone();
        spawn_pump(state, self.stream.clone(), 64, 50, "outbox", move |mut job: Job, id| {
            job.token = Some(id);
            schedule(&st, job);
        });
    }

    async fn ack(&self, token: &str) -> Result<()> {
        self.stream.ack(token).await
    }
}
