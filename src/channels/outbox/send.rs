//! One delivery attempt of an outbox job: send every remaining piece through the account's
//! provider, then record the outcome — sent, failed for good, or queued again after a backoff
//! (a new durable entry when the queue is durable, else a timer in this process).

use super::{Job, settle};
use crate::app::AppState;
use crate::channels::queue::now_ms;
use crate::channels::split::split;
use crate::channels::{Outgoing, SendContext, SendOutcome};
use crate::model::{Delivery, MessageStatus, now};
use crate::retry::backoff;
use std::time::Duration;

/// Runs `job` once; settles its queue entry unless a retry took it over.
pub(super) async fn attempt(state: &AppState, job: Job) {
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
        Err(e) => return retry(state, job, None, e.message()).await,
    };
    let Some(provider) = state.channels.get(account.provider) else {
        record(state, &job, MessageStatus::Failed, Some(format!("unknown provider {}", account.provider))).await;
        return false;
    };
    let callback = format!("{}/v1.0/hooks/{}/{}", state.public_base(), provider.name(), account.id);
    // A template is one message whatever its rendered length.
    let pieces =
        if job.template.is_some() { vec![job.text.clone()] } else { split(&job.text, provider.max_text_chars()) };
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
            tag: job.tag.as_deref(),
            template: job.template.as_ref(),
        };
        let ctx = SendContext {
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
                    tracing::warn!(error = %e.chain(), "provider message id not indexed; its status callbacks will be ignored");
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
    if state.outbox.durable() {
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
    crate::channels::dispatch::apply_delivery(state, job.tenant, job.conversation_id, job.message_id, d).await;
}
