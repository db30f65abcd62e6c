//! The Redis backend's [`RehostQueue`]: one durable stream (`{prefix}:rehost:{media}`, a
//! [`StreamQueue`]) shared by every node.
//!
//! Each node runs one pump (`channels::spawn_pump`): it claims new entries, and every half
//! reclaim period takes over entries another consumer held longer than
//! `channels::reclaim_idle_ms` (a node that died mid-round or while a retry waited). An entry
//! is acknowledged only once its round is over and the next round, if any, is queued.

use super::{RehostQueue, schedule};
use crate::app::AppState;
use crate::channels::inbound_media::Job;
use crate::channels::spawn_pump;
use crate::error::{Error, Result};
use crate::redis::StreamQueue;
use async_trait::async_trait;
use std::sync::Arc;

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
        let st = state.clone();
        spawn_pump(state, self.stream.clone(), 16, 100, "re-hosting", move |mut job: Job, id| {
            job.token = Some(id);
            schedule(&st, job);
        });
    }

    async fn ack(&self, token: &str) -> Result<()> {
        self.stream.ack(token).await
    }
}
