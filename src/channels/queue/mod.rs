//! The durable job queue in front of this node's channel workers, one idiom for its two users:
//! the outbox (`channels::outbox`: one send to one participant) and the inbound media
//! re-hosting rounds (`channels::inbound_rehost`).
//!
//! Owns the [`JobQueue`] seam (trait + [`memory`] + [`redis`], chosen once in app wiring),
//! when a claimed job runs ([`schedule`]: its `not_before` time, and the hand-over of a long
//! wait to a fresh entry), re-queueing and acknowledging. It does not own what a job does (the
//! outbox's per-account workers and send attempts; one re-hosting round) nor its retry policy.
//!
//! Why one queue for both: they need the same guarantees — on Redis a job is an entry of a
//! stream every node pumps, acknowledged only once settled and reclaimed from a node that died,
//! so nothing is lost (at least once); in memory there is nothing to survive a restart for, so
//! a job runs in this process. Two copies of that drifted in small ways before.

pub mod memory;
pub mod redis;

use crate::app::AppState;
use crate::error::Result;
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// A job that can wait in a [`JobQueue`].
pub trait Queued: Serialize + DeserializeOwned + Send + Sync + std::fmt::Debug + 'static {
    /// Not to be run before this time (unix ms): a retry's backoff, durable across nodes.
    fn not_before_ms(&self) -> u64;
    /// The durable entry this job came from, acknowledged once the job is settled (never
    /// serialized: an entry's id is given by the stream).
    fn token(&mut self) -> &mut Option<String>;
}

/// What jobs pass through before this node runs them: nothing (memory) or a durable stream
/// shared by every node (Redis).
#[async_trait]
pub trait JobQueue<J: Queued>: Send + Sync + std::fmt::Debug + 'static {
    /// Whether a job outlives this process once pushed (a retry is then a new entry, not a
    /// timer in this process).
    fn durable(&self) -> bool;
    /// Writes `jobs` in order, in one round trip, for some node to run. `Ok(false)`: this
    /// queue keeps nothing, run them here; `Err`: the write failed, also run them here (at
    /// least once, as ever).
    async fn push(&self, jobs: &[J]) -> Result<bool>;
    /// Starts feeding the entries this node claims to `each`, their token set.
    fn start(&self, state: &AppState, each: fn(&AppState, J));
    /// Entry `token` is settled: drop it.
    async fn ack(&self, token: &str) -> Result<()>;
}

/// How long a durable channel job (an outbox send, a media re-hosting round) may stay claimed
/// before another node takes it over: longer than any retry wait held in process plus two
/// provider calls (sends and downloads share `channels.request_timeout_ms`), so a live node
/// never loses an entry it is still working.
pub fn reclaim_idle_ms(state: &AppState) -> u64 {
    let c = &state.config.channels;
    c.retry_max_ms + 2 * c.request_timeout_ms + 1000
}

pub(crate) fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

/// Hands `job` to `run` now, or once its `not_before` time has come. A durable entry is never
/// held longer than half the reclaim threshold: a longer wait (a provider's big `Retry-After`,
/// a long backoff) is passed on as a fresh entry and this one acknowledged, so no other node
/// mistakes this live one for dead.
pub fn schedule<J: Queued>(state: &AppState, queue: &Arc<dyn JobQueue<J>>, mut job: J, run: fn(&AppState, J)) {
    let wait = job.not_before_ms().saturating_sub(now_ms());
    if wait == 0 {
        return run(state, job);
    }
    let hold = reclaim_idle_ms(state) / 2;
    let (st, queue) = (state.clone(), queue.clone());
    state.tasks.spawn(async move {
        tokio::select! {
            () = st.shutdown.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(wait.min(hold))) => {
                let old = if wait > hold { job.token().take() } else { None };
                match old {
                    None => run(&st, job),
                    Some(old) => {
                        requeue(&st, &queue, job, run).await;
                        settle(&queue, Some(&old)).await;
                    }
                }
            }
        }
    });
}

/// Queues `job` again (its next round, or a wait handed over): on the durable queue when
/// there is one, else — or when Redis refuses the write — [`schedule`]d in this process.
pub async fn requeue<J: Queued>(state: &AppState, queue: &Arc<dyn JobQueue<J>>, job: J, run: fn(&AppState, J)) {
    match queue.push(std::slice::from_ref(&job)).await {
        Ok(true) => {}
        Ok(false) => schedule(state, queue, job, run),
        Err(e) => {
            tracing::warn!(error = %e.chain(), ?job, "job not queued; keeping it in this process");
            schedule(state, queue, job, run);
        }
    }
}

/// The job of entry `token` is settled: drop the entry (nothing to do without one). A failed
/// acknowledgement only means the job runs again (at least once).
pub async fn settle<J: Queued>(queue: &Arc<dyn JobQueue<J>>, token: Option<&str>) {
    if let Some(id) = token
        && let Err(e) = queue.ack(id).await
    {
        tracing::warn!(error = %e.chain(), "queue entry not acknowledged; its job will run again");
    }
}
