//! The outbound queue: one worker per channel account, retries with backoff, status updates.
//!
//! The post path only enqueues (never waits for a provider). Each account has its own queue
//! and worker, so a slow or dead provider account delays nobody else, and messages to one
//! account leave in order. A transient failure (timeout, 5xx, 429) is retried after an
//! exponential backoff with jitter — or the provider's `Retry-After` — up to
//! `channels.max_attempts`; a permanent one (other 4xx) fails at once. Every state change is
//! written to the message's delivery, published to the room and emitted as `message.updated`.
//!
//! This queue lives in the process: on the memory backend nothing else survives a restart
//! either. Deliveries still `queued` when a node stops stay visible as such on the message.

use super::split::split;
use super::{Outgoing, SendOutcome};
use crate::app::AppState;
use crate::model::{AddressType, Delivery, Media, MessageStatus, now};
use dashmap::DashMap;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// One message to one participant over one account.
#[derive(Debug, Clone)]
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
}

/// Per-account queues; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    queues: Arc<DashMap<Uuid, mpsc::UnboundedSender<Job>>>,
}

impl Outbox {
    /// Queues `job` on its account's worker, starting the worker on first use.
    pub fn enqueue(&self, state: &AppState, job: Job) {
        let account = job.account_id;
        let tx = self
            .queues
            .entry(account)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                state.tasks.spawn(worker(state.clone(), rx));
                tx
            })
            .clone();
        if tx.send(job).is_err() {
            tracing::warn!(%account, "outbox worker gone (shutting down); delivery stays queued");
        }
    }
}

async fn worker(state: AppState, mut rx: mpsc::UnboundedReceiver<Job>) {
    loop {
        let job = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            j = rx.recv() => match j { Some(j) => j, None => return },
        };
        attempt(&state, job).await;
    }
}

/// Backoff before attempt `n + 1`: base·2ⁿ capped, with ±25% jitter.
pub fn backoff(base_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << attempt.min(20)).min(max_ms);
    let jitter = rand::thread_rng().gen_range(0.75..=1.25);
    Duration::from_millis(((exp as f64) * jitter) as u64)
}

async fn attempt(state: &AppState, mut job: Job) {
    job.attempt += 1;
    let account = match state.channel_store.get_account(job.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return record(state, &job, MessageStatus::Failed, Some("channel account was deleted".into())).await;
        }
        Err(e) => return retry(state, job, None, e.to_string()).await,
    };
    let Some(provider) = state.channels.get(&account.provider) else {
        return record(state, &job, MessageStatus::Failed, Some(format!("unknown provider {}", account.provider)))
            .await;
    };
    let callback = format!("{}/v1.0/hooks/{}/{}", state.public_base(), provider.name(), account.id);
    let pieces = split(&job.text, provider.max_text_chars());
    while job.pieces_sent < pieces.len() {
        let first = job.pieces_sent == 0;
        let key = format!("{}:{}:{}", job.message_id, job.participant_id, job.pieces_sent);
        let out = Outgoing {
            key: &key,
            to: &job.to,
            text: &pieces[job.pieces_sent],
            medias: if first { &job.medias } else { &[] },
            status_callback: &callback,
        };
        match provider.send(&state.http, &account, &out).await {
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
            SendOutcome::Failed { error } => return record(state, &job, MessageStatus::Failed, Some(error)).await,
        }
    }
    record(state, &job, MessageStatus::Sent, None).await;
}

async fn retry(state: &AppState, job: Job, after: Option<Duration>, error: String) {
    let cfg = &state.config.channels;
    if job.attempt >= cfg.max_attempts {
        let msg = format!("gave up after {} attempts: {error}", job.attempt);
        return record(state, &job, MessageStatus::Failed, Some(msg)).await;
    }
    record(state, &job, MessageStatus::Queued, Some(error)).await;
    let delay = after.unwrap_or_else(|| backoff(cfg.retry_base_ms, cfg.retry_max_ms, job.attempt - 1));
    let (st, outbox) = (state.clone(), state.outbox.clone());
    state.tasks.spawn(async move {
        tokio::select! {
            _ = st.shutdown.cancelled() => {}
            _ = tokio::time::sleep(delay) => outbox.enqueue(&st, job),
        }
    });
}

/// Writes the delivery's new state (see `dispatch::apply_delivery`).
async fn record(state: &AppState, job: &Job, status: MessageStatus, error: Option<String>) {
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
