//! The Redis backend's [`JobQueue`]: one durable stream per kind of job (`P:outbox:{channels}`,
//! `P:rehost:{media}`; a [`StreamQueue`]) shared by every node.
//!
//! A burst's jobs are written with one pipelined round trip. Each node runs one pump
//! (`crate::redis::pump`): it claims new entries for this node, and every half reclaim period
//! ([`reclaim_idle_ms`]) takes over entries another node held longer than that (a node that
//! died mid-send, mid-round or while a retry waited). An entry is acknowledged only once its
//! job is settled, so a job runs at least once. Owns the encoding of jobs and the pump's
//! settings; not what a job does.

use super::{JobQueue, Queued, reclaim_idle_ms};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::redis::{Pump, StreamQueue};
use async_trait::async_trait;
use std::marker::PhantomData;
use std::sync::Arc;

/// A job stream on Redis and how this node pumps it.
#[derive(Debug)]
pub struct RedisQueue<J> {
    stream: Arc<StreamQueue>,
    /// Entries claimed a round.
    batch: usize,
    /// The pause after a round that found nothing.
    idle_pause_ms: u64,
    /// What the jobs are, for logs ("outbox", "re-hosting").
    what: &'static str,
    jobs: PhantomData<fn() -> J>,
}

impl<J> RedisQueue<J> {
    pub fn new(stream: StreamQueue, batch: usize, idle_pause_ms: u64, what: &'static str) -> RedisQueue<J> {
        RedisQueue { stream: Arc::new(stream), batch, idle_pause_ms, what, jobs: PhantomData }
    }
}

#[async_trait]
impl<J: Queued> JobQueue<J> for RedisQueue<J> {
    fn durable(&self) -> bool {
        true
    }

    async fn push(&self, jobs: &[J]) -> Result<bool> {
        let payloads = jobs
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::internal_from("queue job not encodable", e))?;
        self.stream.push_many(&payloads).await?;
        Ok(true)
    }

    fn start(&self, state: &AppState, each: fn(&AppState, J)) {
        let p = Pump {
            consumer: state.node_id.clone(),
            batch: self.batch,
            reclaim_idle_ms: reclaim_idle_ms(state),
            idle_pause_ms: self.idle_pause_ms,
            what: self.what,
        };
        let st = state.clone();
        let feed = move |mut job: J, id: String| {
            *job.token() = Some(id);
            each(&st, job);
        };
        state.tasks.spawn(crate::redis::pump(self.stream.clone(), p, state.shutdown.clone(), feed));
    }

    async fn ack(&self, token: &str) -> Result<()> {
        self.stream.ack(token).await
    }
}
