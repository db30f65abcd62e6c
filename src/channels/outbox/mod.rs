//! The outbound queue: one worker per channel account, retries with backoff, status updates.
//!
//! The post path only enqueues (never waits for a provider). Each account has its own queue
//! and worker, so a slow or dead provider account delays nobody else, and messages to one
//! account leave in order. A transient failure (timeout, 5xx, 429) is retried after an
//! exponential backoff with jitter — or the provider's `Retry-After` — up to
//! `channels.max_attempts`; a permanent one (other 4xx) fails at once. Every state change is
//! written to the message's delivery, published to the room and emitted as `message.updated`.
//!
//! What stands in front of the workers is a [`JobQueue`] (`channels::queue`), chosen once in
//! app wiring: on the memory backend there is none — jobs go straight to this process's
//! workers (nothing else survives a restart either). On Redis jobs go through a durable
//! stream: every node pumps claimed entries into its local per-account workers and
//! acknowledges an entry only once its delivery is settled (sent, failed, or re-queued for a
//! retry with a `not_before` time), and periodically reclaims entries another node held for
//! too long — so a node killed mid-send loses nothing: another node (or this one, restarted)
//! sends it. Delivery is at least once. One attempt (send, retry, record) is in [`send`].

mod send;

use super::queue::{self, JobQueue, Queued, memory::MemoryQueue};
use crate::app::AppState;
use crate::model::{AddressType, Media};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
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
    /// A Messenger/Instagram message tag the message was sent with (outside the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The WhatsApp template the message was sent as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<crate::model::TemplateSend>,
    /// The durable queue entry this job came from, acknowledged once the delivery is settled.
    #[serde(skip)]
    pub token: Option<String>,
}

impl Queued for Job {
    fn not_before_ms(&self) -> u64 {
        self.not_before_ms
    }
    fn token(&mut self) -> &mut Option<String> {
        &mut self.token
    }
}

/// Per-account queues, and the [`JobQueue`] in front of them; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    queues: Arc<DashMap<Uuid, mpsc::UnboundedSender<Job>>>,
    /// Jobs handed to each account's worker and not yet attempted (`outbox_depth` gauge).
    depth: Arc<DashMap<Uuid, usize>>,
    queue: Arc<dyn JobQueue<Job>>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new(Arc::new(MemoryQueue))
    }
}

impl Outbox {
    /// An outbox whose jobs go through `queue` first.
    pub fn new(queue: Arc<dyn JobQueue<Job>>) -> Outbox {
        Outbox { queues: Arc::default(), depth: Arc::default(), queue }
    }

    /// Whether queued jobs survive this process (see [`JobQueue::durable`]).
    pub fn durable(&self) -> bool {
        self.queue.durable()
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
        match self.queue.push(&jobs).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e.chain(), jobs = jobs.len(), "outbox queue refused; sending from this node")
            }
        }
        self.local_many(state, jobs);
    }

    /// Starts pumping the durable queue into this node's workers (no-op in memory mode).
    pub fn start(&self, state: &AppState) {
        self.queue.start(state, schedule);
    }

    /// Hands `job` to its account's worker in this process, starting the worker on first use.
    pub(crate) fn local(&self, state: &AppState, job: Job) {
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

/// Runs `job` on its account's worker here, now or once its `not_before` time has come
/// (`queue::schedule`: a long wait is handed over to a fresh durable entry).
pub fn schedule(state: &AppState, job: Job) {
    queue::schedule(state, &state.outbox.queue, job, |st, job| st.outbox.local(st, job));
}

/// The delivery of `job` is settled: drop its durable entry.
pub(crate) async fn settle(state: &AppState, job: &Job) {
    queue::settle(&state.outbox.queue, job.token.as_deref()).await;
}

async fn worker(state: AppState, mut rx: mpsc::UnboundedReceiver<Job>) {
    loop {
        let job = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            j = rx.recv() => match j { Some(j) => j, None => return },
        };
        state.outbox.track(&state, job.account_id, -1);
        send::attempt(&state, job).await;
    }
}
