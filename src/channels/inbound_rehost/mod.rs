//! The re-hosting queue: inbound provider media jobs (`channels::inbound_media`) scheduled,
//! retried with backoff up to `media.rehost_attempts`, and — on Redis — surviving the node.
//!
//! What stands in front of the rounds is a [`RehostQueue`], chosen once in app wiring, the same
//! idiom as the channel outbox: on the memory backend ([`memory`]) there is none, a job runs
//! and retries in this process (nothing else survives a restart there either). On Redis
//! ([`redis`]) a job is an entry of a durable stream that every node pumps: a retry is a new
//! entry carrying its attempt count and `not_before_ms`, and the old entry is acknowledged
//! only after that, so a node killed between rounds, or mid-round, loses nothing — another
//! node (or this one, restarted) reclaims the entry and goes on. At least once: a node that
//! dies after storing a copy but before recording it stores it again. Owns scheduling and the
//! retry policy; one round is `inbound_media::attempt`.

pub mod memory;
pub mod redis;

use super::inbound_media::{Job, attempt};
use super::reclaim_idle_ms;
use crate::app::AppState;
use crate::error::Result;
use async_trait::async_trait;
use std::time::Duration;

/// What re-hosting jobs pass through before this node runs them.
#[async_trait]
pub trait RehostQueue: Send + Sync + std::fmt::Debug + 'static {
    /// Writes `job` for some node to run. `Ok(false)`: this queue keeps nothing, run it here;
    /// `Err`: the write failed, also run it here.
    async fn push(&self, job: &Job) -> Result<bool>;
    /// Starts feeding entries to this node (through [`schedule`]).
    fn start(&self, state: &AppState);
    /// Entry `token` is settled: drop it.
    async fn ack(&self, token: &str) -> Result<()>;
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

/// Queues `job` (nothing to do without items); when the queue keeps nothing, it runs here.
pub async fn enqueue(state: &AppState, job: Job) {
    if job.items.is_empty() {
        return;
    }
    match state.rehost.push(&job).await {
        Ok(true) => {}
        Ok(false) => schedule(state, job),
        Err(e) => {
            tracing::warn!(error = %e.chain(), message = %job.message, "re-hosting job not queued; running it here");
            schedule(state, job);
        }
    }
}

/// Runs `job` once its `not_before` time has come. A durable entry is held at most half the
/// reclaim threshold: a longer wait is passed on as a fresh entry, so no other node takes
/// this live one for dead.
pub fn schedule(state: &AppState, mut job: Job) {
    let wait = job.not_before_ms.saturating_sub(now_ms());
    let hold = reclaim_idle_ms(state) / 2;
    let st = state.clone();
    state.tasks.spawn(async move {
        if wait > 0 {
            tokio::select! {
                () = st.shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(wait.min(hold))) => {}
            }
            if wait > hold && job.token.is_some() {
                let old = job.token.take();
                requeue(&st, job).await;
                settle(&st, old.as_deref()).await;
                return;
            }
        }
        run(&st, job).await;
    });
}

/// One round, then the retry (or the end) of `job`.
async fn run(state: &AppState, mut job: Job) {
    let token = job.token.take();
    let left = attempt(state, &job).await;
    match left {
        Some(items) if !items.is_empty() => {
            job.attempt += 1;
            let c = &state.config;
            if job.attempt >= c.media.rehost_attempts {
                tracing::warn!(message = %job.message, left = items.len(), "provider media not re-hosted; they keep their provider links");
            } else {
                let wait = crate::retry::backoff(c.channels.retry_base_ms, c.channels.retry_max_ms, job.attempt);
                job.items = items;
                job.not_before_ms = now_ms() + wait.as_millis() as u64;
                requeue(state, job).await;
            }
        }
        _ => {}
    }
    settle(state, token.as_deref()).await;
}

/// Queues the next round of `job` (through the durable queue when there is one).
async fn requeue(state: &AppState, job: Job) {
    match state.rehost.push(&job).await {
        Ok(true) => {}
        Ok(false) => schedule(state, job),
        Err(e) => {
            tracing::warn!(error = %e.chain(), message = %job.message, "re-hosting retry not queued; keeping it here");
            schedule(state, job);
        }
    }
}

async fn settle(state: &AppState, token: Option<&str>) {
    if let Some(id) = token
        && let Err(e) = state.rehost.ack(id).await
    {
        tracing::warn!(error = %e.chain(), "re-hosting entry not acknowledged; it will run again");
    }
}
