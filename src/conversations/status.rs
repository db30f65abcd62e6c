//! Conversation status: the rules for changing it, from every door, and the timer worker.
//!
//! Statuses are `open`, `pending`, `snoozed` (until `snoozed_until`), `resolved` and `closed`
//! (final). They change through the API (`set`), through a new inbound channel message
//! (`reopen`: resolved and snoozed rooms open again) and through timers (`resolve_after` of a
//! quiet open room, `close_after` of a resolved one, the end of a snooze). Every change is one
//! compare-and-set in the store (`Store::set_status`), so a timer and a message racing on two
//! nodes never both win, and is announced as `conversation.updated` with `previous_status`.
//!
//! The worker claims due deadlines (`crate::timers`), re-reads the conversation and its newest
//! message, and either applies the step that is due or reschedules: a deadline is only a hint
//! to look again, the conversation is the truth.

use super::{event, get};
use crate::app::AppState;
use crate::broker::EventKind;
use crate::error::{Error, Result};
use crate::events::emit;
use crate::model::{Conversation, ConversationStatus as S, Lifecycle, Timers, now};
use crate::store::{SeqRange, StatusSet};
use crate::timers::Due;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use std::time::Duration;
use uuid::Uuid;

/// How often each node looks for due deadlines.
const TICK: Duration = Duration::from_millis(250);
/// How long a claimed deadline is this worker's before another node may claim it again.
const LEASE: TimeDelta = TimeDelta::seconds(30);
/// Deadlines handled per tick and node.
const BATCH: usize = 100;
/// Longest timer honoured (ten years); longer ones are clamped.
const MAX_SECS: u64 = 315_360_000;

const NOT_CLOSED: &[S] = &[S::Open, S::Pending, S::Snoozed, S::Resolved];

/// The data of a status change's `conversation.updated`: the conversation and the status it
/// had before.
#[derive(Serialize)]
struct Changed<'a> {
    #[serde(flatten)]
    conversation: &'a Conversation,
    previous_status: S,
}

/// What a due deadline does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Resolve,
    Close,
    Wake,
}

/// The refusal for anything that would write to a closed conversation.
pub fn closed() -> Error {
    crate::store::closed()
}

/// Sets the status asked for through the API. `snoozed` needs a future `snoozed_until`; other
/// statuses clear it. A closed conversation stays closed (409 `closed`).
pub async fn set(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    status: S,
    snoozed_until: Option<DateTime<Utc>>,
) -> Result<Conversation> {
    let t = now();
    let snoozed_until = match (status, snoozed_until) {
        (S::Snoozed, Some(u)) if u > t => Some(u),
        (S::Snoozed, _) => return Err(Error::invalid("invalid_status", "`snoozed` needs a future `snoozed_until`")),
        (_, Some(_)) => {
            return Err(Error::invalid("invalid_status", "`snoozed_until` goes with status `snoozed` only"));
        }
        (_, None) => None,
    };
    let to = Lifecycle { status, snoozed_until, tm_status: Some(t) };
    let set = state.store.set_status(tenant, id, &to, NOT_CLOSED).await?.ok_or(Error::NotFound("conversation"))?;
    if !set.applied {
        return if status == S::Closed { Ok(set.conversation) } else { Err(closed()) };
    }
    // The same status again (a snooze aside) restarts its timers but is no change to announce.
    if set.previous != status || status == S::Snoozed {
        changed(state, &set).await;
    }
    plan(state, &set.conversation, None).await;
    Ok(set.conversation)
}

/// A new inbound channel message arrived: a resolved or snoozed conversation opens again.
pub async fn reopen(state: &AppState, tenant: Uuid, id: Uuid) -> Result<()> {
    let to = Lifecycle { status: S::Open, snoozed_until: None, tm_status: Some(now()) };
    if let Some(set) = state.store.set_status(tenant, id, &to, &[S::Resolved, S::Snoozed]).await?
        && set.applied
    {
        changed(state, &set).await;
        plan(state, &set.conversation, None).await;
    }
    Ok(())
}

/// A message was stored in `c` at `at`: an open or pending room's `resolve_after` counts again.
pub async fn touched(state: &AppState, c: &Conversation, at: DateTime<Utc>) {
    if !matches!(c.lifecycle.status, S::Open | S::Pending) {
        return;
    }
    if let Some(d) = secs(timers(state, c).resolve_after) {
        schedule(state, c, at + d).await;
    }
}

/// Schedules `c`'s next deadline (after a change of its status or timers); with `lease`, a
/// claimed deadline with nothing next is released.
pub async fn plan(state: &AppState, c: &Conversation, lease: Option<(Due, DateTime<Utc>)>) {
    let last = match last_message_at(state, c).await {
        Ok(t) => t,
        Err(e) => return tracing::warn!(error = %e.chain(), conversation = %c.id, "timer not planned"),
    };
    match (next(c, timers(state, c), last), lease) {
        (Some((at, _)), _) => schedule(state, c, at).await,
        (None, Some((due, until))) => {
            if let Err(e) = state.deadlines.release(due, until).await {
                tracing::warn!(error = %e.chain(), conversation = %c.id, "timer not released");
            }
        }
        (None, None) => {}
    }
}

/// The tenant's default timers under `c`'s own.
fn timers(state: &AppState, c: &Conversation) -> Timers {
    let tenant = state.config.tenants.iter().find(|t| t.tenant_id() == c.tenant_id).map(|t| t.timers);
    c.timers.unwrap_or_default().or(tenant.unwrap_or_default())
}

fn secs(s: Option<u64>) -> Option<TimeDelta> {
    s.filter(|&n| n > 0).and_then(|n| TimeDelta::try_seconds(n.min(MAX_SECS) as i64))
}

/// When `c` has to change next, and how.
fn next(c: &Conversation, timers: Timers, last_message: Option<DateTime<Utc>>) -> Option<(DateTime<Utc>, Step)> {
    let since = c.lifecycle.tm_status.unwrap_or(c.tm_create);
    match c.lifecycle.status {
        S::Open | S::Pending => {
            secs(timers.resolve_after).map(|d| (last_message.map_or(since, |m| m.max(since)) + d, Step::Resolve))
        }
        S::Resolved => secs(timers.close_after).map(|d| (since + d, Step::Close)),
        S::Snoozed => c.lifecycle.snoozed_until.map(|t| (t, Step::Wake)),
        S::Closed => None,
    }
}

async fn last_message_at(state: &AppState, c: &Conversation) -> Result<Option<DateTime<Utc>>> {
    if c.last_seq == 0 {
        return Ok(None);
    }
    let range = SeqRange { after: None, before: Some(c.last_seq.saturating_add(1)), limit: 1 };
    Ok(state.store.messages(c.id, range).await?.last().map(|m| m.tm_create))
}

async fn schedule(state: &AppState, c: &Conversation, at: DateTime<Utc>) {
    if let Err(e) = state.deadlines.schedule(c.tenant_id, c.id, at).await {
        tracing::warn!(error = %e.chain(), conversation = %c.id, "timer not scheduled");
    }
}

async fn changed(state: &AppState, set: &StatusSet) {
    let c = &set.conversation;
    let data = Changed { conversation: c, previous_status: set.previous };
    emit(state, event(EventKind::ConversationUpdated, c.tenant_id, c.id, &data)).await;
    // The room hears it too (a `status` frame): the people in it, end users included, are not
    // conversation watchers.
    let frame = crate::wire::ServerFrame::Status { conversation_id: c.id, status: c.lifecycle.status }.to_text();
    if let Err(e) = state.broker.publish(crate::wire::Publication::Ephemeral { room: c.id, frame }).await {
        tracing::warn!(error = %e.chain(), conversation = %c.id, "status frame not published");
    }
}

/// Handles one claimed deadline: applies the step that is due, or reschedules.
async fn fire(state: &AppState, due: Due, lease_until: DateTime<Utc>) -> Result<()> {
    let c = match get(state, due.tenant, due.conversation).await {
        Ok(c) => c,
        Err(Error::NotFound(_)) => return state.deadlines.release(due, lease_until).await,
        Err(e) => return Err(e),
    };
    let t = now();
    let Some((at, step)) = next(&c, timers(state, &c), last_message_at(state, &c).await?) else {
        return state.deadlines.release(due, lease_until).await;
    };
    if at > t {
        // A message (or a change) came after the deadline was set: look again later.
        return state.deadlines.schedule(due.tenant, due.conversation, at).await;
    }
    let status = match step {
        Step::Resolve => S::Resolved,
        Step::Close => S::Closed,
        Step::Wake => S::Open,
    };
    let to = Lifecycle { status, snoozed_until: None, tm_status: Some(t) };
    let set = state.store.set_status(due.tenant, due.conversation, &to, &[c.lifecycle.status]).await?;
    let Some(set) = set else { return state.deadlines.release(due, lease_until).await };
    if set.applied {
        changed(state, &set).await;
    }
    plan(state, &set.conversation, Some((due, lease_until))).await;
    Ok(())
}

/// Starts this node's timer worker: every tick it claims due deadlines and handles them.
pub fn start(state: &AppState) {
    let st = state.clone();
    state.tasks.spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = st.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let t = now();
            let lease_until = t + LEASE;
            let due = match st.deadlines.claim(t, lease_until, BATCH).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e.chain(), "timers not claimed");
                    continue;
                }
            };
            for d in due {
                if let Err(e) = fire(&st, d, lease_until).await {
                    tracing::warn!(error = %e.chain(), conversation = %d.conversation, "timer not handled; retried after its lease");
                }
            }
        }
    });
}
