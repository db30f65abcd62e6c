//! The outbound queue: one worker per channel account, retries with backoff, status updates.
//!
//! The post path only enqueues (never waits for a provider). Each account has its own queue
//! and worker, so a slow or dead provider account delays nobody else, and messages to one
//! account leave in order. A transient failure (timeout, 5xx, 429) is retried after an
//! exponential backoff with jitter — or the provider's `Retry-After` — up to
//! `channels.max_attempts`; a permanent one (other 4xx) fails at once. Every state change is
//! written to the message's delivery, published to the room and emitted as `message.updated`.
//!
//! On the memory backend the queue lives in the process (nothing else survives a restart
//! either). On Redis, jobs go through a durable stream ([`StreamQueue`]): every node pumps
//! claimed entries into its local per-account workers and acknowledges an entry only once its
//! delivery is settled (sent, failed, or re-queued for a retry with a `not_before` time), and
//! periodically reclaims entries another node held for too long — so a node killed mid-send
//! loses nothing: another node (or this one, restarted) sends it. Delivery is at least once.

use super::split::split;
use super::{Outgoing, SendOutcome};
use crate::app::AppState;
use crate::model::{AddressType, Delivery, Media, MessageStatus, now};
use crate::redis::StreamQueue;
use dashmap::DashMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// One message to one participant over one account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub tenant: Uuid,
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub participant_id: Uuid,
    pub account_id: Uuid,
    pub channel: AddressType,
    pub to: String,
    pub text: String,
    pub medias: Vec<Media>,
    /// Attempts made so far.
    pub attempt: u32,
    /// Pieces of a split text already accepted by the provider (a retry resumes after them).
    pub pieces_sent: usize,
    pub provider_ids: Vec<String>,
    /// Not to be attempted before this time (unix ms): a retry's backoff, durable across nodes.
    #[serde(default)]
    pub not_before_ms: u64,
    /// `X-Request-Id` of the API request that posted the message.
    #[serde(default)]
    pub request_id: String,
    /// The durable queue entry this job came from, acknowledged once the delivery is settled.
    #[serde(skip)]
    pub token: Option<String>,
}

/// Per-account queues, and the durable stream in front of them on Redis; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    queues: Arc<DashMap<Uuid, mpsc::UnboundedSender<Job>>>,
    /// Jobs handed to each account's worker and not yet attempted (`outbox_depth` gauge).
    depth: Arc<DashMap<Uuid, usize>>,
    durable: Option<Arc<StreamQueue>>,
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

impl Outbox {
    /// An outbox whose jobs go through `queue` first (the Redis backend).
    pub fn durable(queue: StreamQueue) -> Outbox {
        Outbox { queues: Arc::default(), depth: Arc::default(), durable: Some(Arc::new(queue)) }
    }

    /// Queues `job`: on the durable stream when there is one (falling back to this process if
    /// Redis refuses the write), else straight on its account's worker.
    pub async fn enqueue(&self, state: &AppState, job: Job) {
        self.enqueue_many(state, vec![job]).await;
    }

    /// Queues `jobs` in their order with one write: one pipeline on the durable stream (all
    /// of them sent from this process if Redis refuses it — at least once, as ever), else one
    /// hand-over to the local workers.
    pub async fn enqueue_many(&self, state: &AppState, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        if let Some(q) = &self.durable {
            match jobs.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>() {
                Ok(payloads) => match q.push_many(&payloads).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, jobs = jobs.len(), "outbox stream refused; sending from this node")
                    }
                },
                Err(e) => tracing::warn!(error = %e, "outbox job not encodable; sending from this node"),
            }
        }
        self.local_many(state, jobs);
    }

    /// Starts pumping the durable stream into this node's workers (no-op in memory mode).
    pub fn start(&self, state: &AppState) {
        if let Some(q) = &self.durable {
            state.tasks.spawn(pump(state.clone(), q.clone()));
        }
    }

    /// Hands `job` to its account's worker in this process, starting the worker on first use.
    fn local(&self, state: &AppState, job: Job) {
        self.local_many(state, vec![job]);
    }

    /// [`local`](Self::local) for a batch: each account's worker looked up once, its jobs
    /// handed over in order (counted in the depth before a worker can take them).
    fn local_many(&self, state: &AppState, jobs: Vec<Job>) {
        let mut workers: Vec<(Uuid, mpsc::UnboundedSender<Job>)> = Vec::new();
        for job in &jobs {
            if !workers.iter().any(|(a, _)| *a == job.account_id) {
                let n = jobs.iter().filter(|j| j.account_id == job.account_id).count();
                self.track(state, job.account_id, n as isize);
                workers.push((job.account_id, self.sender(state, job.account_id)));
            }
        }
        for job in jobs {
            let account = job.account_id;
            let Some((_, tx)) = workers.iter().find(|(a, _)| *a == account) else { continue };
            if tx.send(job).is_err() {
                tracing::warn!(%account, "outbox worker gone (shutting down); delivery stays queued");
                self.track(state, account, -1);
            }
        }
    }

    /// The sender of `account`'s worker, started on first use.
    fn sender(&self, state: &AppState, account: Uuid) -> mpsc::UnboundedSender<Job> {
        self.queues
            .entry(account)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                state.tasks.spawn(worker(state.clone(), rx));
                tx
            })
            .clone()
    }

    fn track(&self, state: &AppState, account: Uuid, delta: isize) {
        let mut d = self.depth.entry(account).or_default();
        *d = d.saturating_add_signed(delta);
        state.metrics.outbox_depth("channel", &account.to_string(), *d);
    }
}

/// How long an entry may stay claimed before another node takes it over: longer than any
/// retry wait plus two provider calls, so a live node never loses an entry it is still working.
fn reclaim_idle_ms(state: &AppState) -> u64 {
    let c = &state.config.channels;
    c.retry_max_ms + 2 * c.request_timeout_ms + 1000
}

async fn pump(state: AppState, q: Arc<StreamQueue>) {
    let consumer = state.node_id.clone();
    let idle = reclaim_idle_ms(&state);
    let mut next_reclaim = tokio::time::Instant::now();
    loop {
        let mut entries = match q.claim(&consumer, 64).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "outbox stream unreadable; retrying");
                Vec::new()
            }
        };
        if tokio::time::Instant::now() >= next_reclaim {
            next_reclaim = tokio::time::Instant::now() + std::time::Duration::from_millis(idle / 2);
            match q.reclaim(&consumer, idle, 64).await {
                Ok(more) => entries.extend(more),
                Err(e) => tracing::warn!(error = %e, "outbox reclaim failed"),
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

/// Runs `job` now, or once its `not_before` time has come. A durable entry is never held
/// longer than half the reclaim threshold: a longer wait (a provider's big `Retry-After`) is
/// passed on as a fresh entry, so no other node mistakes this live one for dead.
fn schedule(state: &AppState, mut job: Job) {
    let wait = job.not_before_ms.saturating_sub(now_ms());
    if wait == 0 {
        return state.outbox.local(state, job);
    }
    let hold = reclaim_idle_ms(state) / 2;
    let st = state.clone();
    state.tasks.spawn(async move {
        tokio::select! {
            _ = st.shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait.min(hold))) => {
                if wait <= hold || job.token.is_none() {
                    return st.outbox.local(&st, job);
                }
                let old = job.token.take();
                st.outbox.enqueue(&st, job.clone()).await;
                job.token = old;
                settle(&st, &job).await;
            }
        }
    });
}

/// The delivery of `job` is settled: drop its durable entry.
async fn settle(state: &AppState, job: &Job) {
    if let (Some(q), Some(id)) = (&state.outbox.durable, &job.token)
        && let Err(e) = q.ack(id).await
    {
        tracing::warn!(error = %e, "outbox entry not acknowledged; it will be sent again");
    }
}

async fn worker(state: AppState, mut rx: mpsc::UnboundedReceiver<Job>) {
    loop {
        let job = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            j = rx.recv() => match j { Some(j) => j, None => return },
        };
        state.outbox.track(&state, job.account_id, -1);
        attempt(&state, job).await;
    }
}

/// Backoff before attempt `n + 1`: base·2ⁿ capped, with ±25% jitter.
pub fn backoff(base_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempt.min(20)).min(max_ms);
    let jitter = rand::thread_rng().gen_range(0.75..=1.25);
    Duration::from_millis(((exp as f64) * jitter) as u64)
}

async fn attempt(state: &AppState, job: Job) {
    let settled = job.clone();
    let requeued = run(state, job).await;
    if !requeued {
        settle(state, &settled).await;
    }
}

/// One attempt; true when the job was handed on for a retry (which settles it itself).
async fn run(state: &AppState, mut job: Job) -> bool {
    job.attempt += 1;
    let account = match state.channel_store.get_account(job.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            record(state, &job, MessageStatus::Failed, Some("channel account was deleted".into())).await;
            return false;
        }
        Err(e) => return retry(state, job, None, e.to_string()).await,
    };
    let Some(provider) = state.channels.get(account.provider) else {
        record(state, &job, MessageStatus::Failed, Some(format!("unknown provider {}", account.provider))).await;
        return false;
    };
    let callback = format!("{}/v1.0/hooks/{}/{}", state.public_base(), provider.name(), account.id);
    let pieces = split(&job.text, provider.max_text_chars());
    while job.pieces_sent < pieces.len() {
        let first = job.pieces_sent == 0;
        let key = format!("{}:{}:{}", job.message_id, job.participant_id, job.pieces_sent);
        let out = Outgoing {
            key: &key,
            request_id: &job.request_id,
            to: &job.to,
            text: &pieces[job.pieces_sent],
            medias: if first { &job.medias } else { &[] },
            status_callback: &callback,
        };
        let ctx = super::SendContext {
            state,
            account: &account,
            conversation_id: job.conversation_id,
            message_id: job.message_id,
            participant_id: job.participant_id,
        };
        match provider.send_in(&ctx, &out).await {
            SendOutcome::Sent { provider_message_id } => {
                let r = crate::store::DeliveryRef {
                    conversation_id: job.conversation_id,
                    message_id: job.message_id,
                    participant_id: job.participant_id,
                };
                if let Err(e) = state.channel_store.put_provider_ref(account.id, &provider_message_id, r).await {
                    tracing::warn!(error = %e, "provider message id not indexed; its status callbacks will be ignored");
                }
                job.provider_ids.push(provider_message_id);
                job.pieces_sent += 1;
            }
            SendOutcome::Retry { after, error } => return retry(state, job, after, error).await,
            SendOutcome::Failed { error } => {
                record(state, &job, MessageStatus::Failed, Some(error)).await;
                return false;
            }
        }
    }
    record(state, &job, MessageStatus::Sent, None).await;
    false
}

/// Schedules the next attempt (or gives up); true when the job was re-queued.
async fn retry(state: &AppState, mut job: Job, after: Option<Duration>, error: String) -> bool {
    let cfg = &state.config.channels;
    if job.attempt >= cfg.max_attempts {
        let msg = format!("gave up after {} attempts: {error}", job.attempt);
        record(state, &job, MessageStatus::Failed, Some(msg)).await;
        return false;
    }
    record(state, &job, MessageStatus::Queued, Some(error)).await;
    state.metrics.outbox_retry("channel", &job.account_id.to_string());
    // A provider's Retry-After is honoured as given (up to an hour: a sanity bound).
    let delay = after.map_or_else(
        || backoff(cfg.retry_base_ms, cfg.retry_max_ms, job.attempt - 1),
        |a| a.min(Duration::from_secs(3600)),
    );
    if state.outbox.durable.is_some() {
        // The retry is a new entry, written before this one is acknowledged: no window in
        // which a crash loses it.
        let old = job.token.take();
        job.not_before_ms = now_ms() + delay.as_millis() as u64;
        state.outbox.enqueue(state, job.clone()).await;
        job.token = old;
        settle(state, &job).await;
        return true;
    }
    let st = state.clone();
    state.tasks.spawn(async move {
        tokio::select! {
            _ = st.shutdown.cancelled() => {}
            _ = tokio::time::sleep(delay) => st.outbox.local(&st, job),
        }
    });
    true
}

/// Writes the delivery's new state (see `dispatch::apply_delivery`).
async fn record(state: &AppState, job: &Job, status: MessageStatus, error: Option<String>) {
    let status_name =
        serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    state.metrics.delivery(job.channel.as_str(), &status_name);
    let d = Delivery {
        participant_id: job.participant_id,
        account_id: job.account_id,
        channel: job.channel,
        to: job.to.clone(),
        status,
        provider_message_id: job.provider_ids.first().cloned(),
        error,
        attempts: job.attempt,
        tm_update: now(),
    };
    super::dispatch::apply_delivery(state, job.tenant, job.conversation_id, job.message_id, d).await;
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_grows_and_is_capped() {
        let d0 = backoff(100, 10_000, 0).as_millis();
        let d3 = backoff(100, 10_000, 3).as_millis();
        let d30 = backoff(100, 10_000, 30).as_millis();
        assert!((75..=125).contains(&d0), "{d0}");
        assert!((600..=1000).contains(&d3), "{d3}");
        assert!((7500..=12500).contains(&d30), "{d30}");
    }
}
