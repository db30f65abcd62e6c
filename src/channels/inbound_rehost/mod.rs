//! The re-hosting queue: inbound provider media jobs (`channels::inbound_media`) scheduled,
//! retried with backoff up to `media.rehost_attempts`, and — on Redis — surviving the node.
//!
//! What stands in front of the rounds is a [`JobQueue`] (`channels::queue`, shared with the
//! channel outbox), chosen once in app wiring: on the memory backend there is none, a job runs
//! and retries in this process (nothing else survives a restart there either). On Redis a job
//! is an entry of a durable stream that every node pumps: a retry is a new
//! entry carrying its attempt count and `not_before_ms`, and the old entry is acknowledged
//! only after that, so a node killed between rounds, or mid-round, loses nothing — another
//! node (or this one, restarted) reclaims the entry and goes on. At least once: a node that
//! dies after storing a copy but before recording it stores it again. Owns scheduling and the
//! retry policy; one round is `inbound_media::attempt`.

use super::inbound_media::{Job, attempt};
use super::queue::{self, JobQueue, Queued, now_ms};
use crate::app::AppState;

/// The queue re-hosting jobs wait in (`AppState::rehost`).
pub type RehostQueue = dyn JobQueue<Job>;

impl Queued for Job {
    fn not_before_ms(&self) -> u64 {
        self.not_before_ms
    }
    fn token(&mut self) -> &mut Option<String> {
        &mut self.token
    }
}

/// Queues `job` (nothing to do without items); when the queue keeps nothing, or Redis
/// refuses the write, it runs here.
pub async fn enqueue(state: &AppState, job: Job) {
    if !job.items.is_empty() {
        requeue(state, job).await;
    }
}

/// Runs `job` here once its `not_before` time has come (`queue::schedule`: a long wait is
/// handed over to a fresh durable entry).
pub fn schedule(state: &AppState, job: Job) {
    queue::schedule(state, &state.rehost, job, |st, job| {
        let st2 = st.clone();
        st.tasks.spawn(async move { run(&st2, job).await });
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
    queue::requeue(state, &state.rehost, job, schedule).await;
}

async fn settle(state: &AppState, token: Option<&str>) {
    queue::settle(&state.rehost, token).await;
}
