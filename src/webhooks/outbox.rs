//! The outbox workers: signed POSTs with retries, in order per webhook and conversation.
//!
//! One node at a time works the outbox (it holds the store's lease; on memory that is always
//! this node). While it does, a *session* claims entries and routes each into a FIFO lane keyed
//! by (webhook, conversation) — conversation-less events (accounts) share one lane per webhook.
//! A lane delivers its head until it is delivered, failed or dead, then acknowledges it and
//! moves on, so a delivery for conversation C never overtakes an earlier one for C on the same
//! webhook, while other lanes carry on. Requests to one webhook are capped at
//! `webhooks.max_concurrency_per_endpoint` and each is bounded by `webhooks.request_timeout_ms`.
//!
//! Losing the lease (or shutdown) cancels the session: lanes stop where they are and their
//! entries stay pending in the store, for whoever takes over to `reclaim` — at-least-once.

use super::model::{Attempt, Claimed, Delivery, DeliveryStatus, Mode, OutboxEntry, Work};
use super::sign::{SendError, post_signed};
use crate::app::AppState;
use crate::model::now;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const BATCH: usize = 100;
/// How often an idle consumer looks for entries queued by other nodes.
const POLL_IDLE: Duration = Duration::from_millis(200);
/// Pause before retrying a store call that failed.
const STORE_RETRY: Duration = Duration::from_millis(500);

type LaneKey = (Uuid, Option<Uuid>);

/// A delivery waiting in its lane, with the token that acknowledges its outbox entry.
#[derive(Clone)]
struct Lane {
    token: String,
    entry: OutboxEntry,
}

struct Session {
    token: CancellationToken,
    lanes: DashMap<LaneKey, VecDeque<Lane>>,
    /// Entries routed to each webhook and not yet settled (the `outbox_depth` gauge).
    depth: DashMap<Uuid, usize>,
}

impl Session {
    fn track(&self, state: &AppState, webhook: Uuid, delta: isize) {
        let mut d = self.depth.entry(webhook).or_default();
        *d = d.saturating_add_signed(delta);
        state.metrics.outbox_depth("webhook", &webhook.to_string(), *d);
    }
}

/// Holds (or waits for) the outbox lease and runs a session while it is held.
pub(super) async fn run(state: AppState) {
    let ttl = Duration::from_secs(state.config.webhooks.lease_secs);
    let wh = &state.webhooks;
    let mut session: Option<Arc<Session>> = None;
    loop {
        let held = match wh.store.lease(&wh.consumer, ttl).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e.chain(), "webhook outbox lease not renewed");
                false
            }
        };
        match (&session, held) {
            (None, true) => {
                tracing::info!(consumer = %wh.consumer, "working the webhook outbox");
                let s = Arc::new(Session {
                    token: state.shutdown.child_token(),
                    lanes: DashMap::new(),
                    depth: DashMap::new(),
                });
                state.tasks.spawn(consume(state.clone(), s.clone()));
                session = Some(s);
            }
            (Some(s), false) => {
                tracing::info!("webhook outbox lease lost; pending deliveries are left to its next holder");
                s.token.cancel();
                session = None;
            }
            _ => {}
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tokio::time::sleep(ttl / 3) => {}
        }
    }
}

async fn consume(state: AppState, s: Arc<Session>) {
    let wh = &state.webhooks;
    // Whatever a previous holder (a dead node, or this one before a restart) left pending.
    loop {
        match wh.store.reclaim(&wh.consumer).await {
            Ok(entries) => {
                if !entries.is_empty() {
                    tracing::info!(count = entries.len(), "resuming pending webhook deliveries");
                }
                if !take(&state, &s, entries).await {
                    return;
                }
                break;
            }
            Err(e) => tracing::warn!(error = %e.chain(), "pending webhook deliveries not reclaimed yet"),
        }
        if !pause(&s.token, STORE_RETRY).await {
            return;
        }
    }
    loop {
        match wh.store.claim(&wh.consumer, BATCH).await {
            Ok(batch) if !batch.is_empty() => {
                if !take(&state, &s, batch).await {
                    return;
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.chain(), "webhook outbox not read"),
        }
        tokio::select! {
            _ = s.token.cancelled() => return,
            _ = wh.wake.notified() => {}
            _ = tokio::time::sleep(POLL_IDLE) => {}
        }
    }
}

/// Works claimed outbox entries in order: events are fanned out into deliveries (queued at the
/// outbox's end, so a conversation's deliveries keep its events' order) and acknowledged;
/// deliveries go to their lanes. False when the session ended.
async fn take(state: &AppState, s: &Arc<Session>, claimed: Vec<Claimed>) -> bool {
    for c in claimed {
        match c.work {
            Work::Delivery(entry) => route(state, s, c.token, entry),
            Work::Event { event } => {
                if !super::dispatch::fan_out(state, &s.token, &event).await {
                    return false;
                }
                if let Err(e) = state.webhooks.store.ack(&c.token).await {
                    tracing::warn!(error = %e, event = %event.id, "fanned-out webhook event not acknowledged");
                }
            }
        }
    }
    true
}

fn route(state: &AppState, s: &Arc<Session>, token: String, entry: OutboxEntry) {
    let key = (entry.webhook_id, entry.conversation_id);
    s.track(state, entry.webhook_id, 1);
    let c = Lane { token, entry };
    let mut fresh = false;
    s.lanes.entry(key).and_modify(|q| q.push_back(c.clone())).or_insert_with(|| {
        fresh = true;
        VecDeque::from([c])
    });
    if fresh {
        state.tasks.spawn(lane(state.clone(), s.clone(), key));
    }
}

/// Works one lane until it is empty (then removes it) or the session ends.
async fn lane(state: AppState, s: Arc<Session>, key: LaneKey) {
    loop {
        let next = match s.lanes.get_mut(&key) {
            Some(mut q) => q.pop_front(),
            None => return,
        };
        let Some(c) = next else {
            // Empty: remove it, unless an entry arrived since the pop.
            if s.lanes.remove_if(&key, |_, q| q.is_empty()).is_some() {
                return;
            }
            continue;
        };
        let delivered = deliver(&state, &s.token, &c.entry).await;
        s.track(&state, c.entry.webhook_id, -1);
        if !delivered {
            return;
        }
        if let Err(e) = state.webhooks.store.ack(&c.token).await {
            tracing::warn!(error = %e.chain(), delivery = %c.entry.delivery_id, "webhook outbox entry not acknowledged");
        }
    }
}

/// Sleeps `d`; false if the session ended first.
async fn pause(token: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = token.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

fn until(at: DateTime<Utc>) -> Duration {
    (at - now()).to_std().unwrap_or(Duration::ZERO)
}

/// Drives one delivery to a final state. False when the session ended first (the entry stays
/// pending); true when the entry can be acknowledged.
async fn deliver(state: &AppState, token: &CancellationToken, e: &OutboxEntry) -> bool {
    let (wh, cfg) = (&state.webhooks, &state.config.webhooks);
    let mut d = loop {
        match wh.store.get_delivery(e.webhook_id, e.delivery_id).await {
            Ok(Some(d)) => break d,
            // The webhook was deleted, or the record fell out of retention.
            Ok(None) => return true,
            Err(err) => tracing::warn!(error = %err.chain(), delivery = %e.delivery_id, "delivery record not read"),
        }
        if !pause(token, STORE_RETRY).await {
            return false;
        }
    };
    while d.status == DeliveryStatus::Pending {
        if let Some(at) = d.next_retry_at
            && !pause(token, until(at)).await
        {
            return false;
        }
        // Deleted, or turned into an intercept webhook since: nothing left to deliver to.
        let Some(hook) = wh.find(e.tenant_id, e.webhook_id).filter(|h| h.mode == Mode::Notify) else { return true };
        let limit = wh.limit(hook.id, cfg.max_concurrency_per_endpoint);
        let permit = tokio::select! {
            _ = token.cancelled() => return false,
            p = limit.acquire_owned() => p,
        };
        let started = Instant::now();
        let at = now();
        let timeout = Duration::from_millis(cfg.request_timeout_ms);
        let result = tokio::select! {
            _ = token.cancelled() => return false,
            r = post_signed(state, &hook, d.event_id, d.payload.clone(), timeout) => r,
        };
        drop(permit);
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (attempt, class) = match result {
            Ok(res) => {
                let code = res.status().as_u16();
                let a = Attempt { at, status_code: Some(code), error: None, latency_ms };
                (a, classify(code))
            }
            Err(SendError::Refused(msg)) => {
                (Attempt { at, status_code: None, error: Some(msg), latency_ms }, Class::Final)
            }
            Err(SendError::Transport(msg)) => {
                (Attempt { at, status_code: None, error: Some(msg), latency_ms }, Class::Retry)
            }
        };
        settle(state, &mut d, attempt, class);
        loop {
            match wh.store.put_delivery(&d, cfg.deliveries_kept).await {
                Ok(()) => break,
                Err(err) => tracing::warn!(error = %err.chain(), delivery = %d.id, "delivery state not recorded"),
            }
            if !pause(token, STORE_RETRY).await {
                return false;
            }
        }
        if d.status != DeliveryStatus::Pending {
            tracing::debug!(webhook = %hook.id, delivery = %d.id, status = ?d.status, "webhook delivery settled");
        }
    }
    true
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Delivered,
    Retry,
    Final,
}

/// 2xx delivered; 408, 429 and 5xx retried; everything else (3xx, other 4xx) final.
fn classify(code: u16) -> Class {
    match code {
        200..=299 => Class::Delivered,
        408 | 429 | 500..=599 => Class::Retry,
        _ => Class::Final,
    }
}

fn settle(state: &AppState, d: &mut Delivery, attempt: Attempt, class: Class) {
    let cfg = &state.config.webhooks;
    d.record(attempt);
    d.tm_update = now();
    d.next_retry_at = None;
    d.status = match class {
        Class::Delivered => DeliveryStatus::Delivered,
        Class::Final => DeliveryStatus::Failed,
        Class::Retry => {
            let wait = crate::retry::backoff(cfg.retry_base_ms, cfg.retry_max_ms, d.attempt_count - 1);
            let next = d.tm_update + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            if next > d.retry_until {
                DeliveryStatus::Dead
            } else {
                d.next_retry_at = Some(next);
                state.metrics.outbox_retry("webhook", &d.webhook_id.to_string());
                DeliveryStatus::Pending
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::{Class, classify};

    #[test]
    fn status_classes() {
        assert_eq!(classify(204), Class::Delivered);
        for c in [408, 429, 500, 503] {
            assert_eq!(classify(c), Class::Retry, "{c}");
        }
        for c in [301, 400, 401, 404, 410] {
            assert_eq!(classify(c), Class::Final, "{c}");
        }
    }
}
