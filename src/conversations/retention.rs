//! Retention: each tenant's `retention_days`, applied in the background.
//!
//! Every node runs one sweep task (started by `app::serve`) that wakes every
//! `retention.sweep_secs`, walks the conversations of each tenant with a retention (the store's
//! paged list: on Redis the `tconvs` index, never a `SCAN`), and trims each room's history
//! through `Store::trim_history` in steps of `retention.batch` messages — one short room lock
//! or one short Redis script each — so a sweep never holds up a room's writers for long. Seqs
//! never change: the oldest kept message keeps its seq, `first_retained_seq` rises, and a client
//! resuming below it gets `recovered: false` (see `ws`). Several nodes sweeping the same tenant
//! is harmless: a trim removes each message once. The room itself (conversation, participants,
//! seq, epoch) is kept; only messages go.
//!
//! Removing messages is not a change users are told about (no event, no frame): history simply
//! starts later. The stored media of removed messages are deleted with them
//! (`media::attach::forget_medias`).

use crate::app::AppState;
use crate::error::Result;
use crate::model::now;
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;
use uuid::Uuid;

/// Conversations read per page of a sweep.
const PAGE: usize = 100;

/// Starts this node's sweep when any configured tenant has a retention.
pub fn start(state: &AppState) {
    let tenants: Vec<(Uuid, TimeDelta)> =
        state.config.tenants.iter().filter_map(|t| Some((t.tenant_id(), t.retention()?))).collect();
    if tenants.is_empty() {
        return;
    }
    let st = state.clone();
    let every = Duration::from_secs(state.config.retention.sweep_secs.max(1));
    state.tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = st.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for (tenant, keep) in &tenants {
                match sweep(&st, *tenant, now() - *keep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(%tenant, removed = n, "retention: old messages removed"),
                    Err(e) => tracing::warn!(%tenant, error = %e.chain(), "retention sweep stopped; next one retries"),
                }
            }
        }
    });
}

/// One pass over `tenant`'s conversations, removing messages created before `before`.
/// Returns how many it removed. A room that fails is logged and skipped (the next sweep
/// retries it); a failure to list the tenant's rooms ends the pass.
pub async fn sweep(state: &AppState, tenant: Uuid, before: DateTime<Utc>) -> Result<usize> {
    let batch = state.config.retention.batch.max(1);
    let mut cursor = None;
    let mut removed = 0;
    loop {
        let page = state.store.list_conversations(tenant, cursor, PAGE).await?;
        for c in page.iter().filter(|c| c.last_seq > 0) {
            loop {
                if state.shutdown.is_cancelled() {
                    return Ok(removed);
                }
                let step = match state.store.trim_history(c.id, before, batch).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(conversation = %c.id, error = %e.chain(), "retention: room not trimmed");
                        break;
                    }
                };
                removed += step.removed;
                crate::media::attach::forget_medias(state, &step.medias).await;
                if step.removed < batch {
                    break;
                }
                // Let the room's writers (and everything else) in between two steps.
                tokio::task::yield_now().await;
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => cursor = Some(last.id),
            _ => return Ok(removed),
        }
    }
}
