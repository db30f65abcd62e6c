//! Conversation timers: one deadline per conversation, durable and shared by every node.
//!
//! A deadline says "look at this conversation again at T" (its `resolve_after` runs out, its
//! `close_after` runs out, its snooze ends). This module only keeps deadlines and hands each
//! due one to exactly one worker, with the house's two backends: [`memory`] (an in-process
//! map) and [`redis`] (a sorted set scored by deadline, claimed by a Lua script). What happens
//! when one is due is decided in `conversations::status`, which re-reads the conversation
//! first, so a deadline that is stale (a message arrived meanwhile) only reschedules.
//!
//! A claim does not delete the deadline: it pushes it to the claim's lease (`lease_until`),
//! so a node that dies mid-work leaves it to be claimed again; the worker then schedules the
//! next deadline or `release`s it.

pub mod memory;
pub mod redis;

use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A due deadline, handed to one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub tenant: Uuid,
    pub conversation: Uuid,
}

/// The seam between the two backends.
#[async_trait]
pub trait Deadlines: Send + Sync + std::fmt::Debug + 'static {
    /// Sets the conversation's deadline to `at`, replacing any other.
    async fn schedule(&self, tenant: Uuid, conversation: Uuid, at: DateTime<Utc>) -> Result<()>;
    /// Hands out up to `limit` deadlines due at `now`, each moved to `lease_until`; a deadline
    /// is handed to one caller only, on any node.
    async fn claim(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: usize) -> Result<Vec<Due>>;
    /// Drops a claimed deadline, unless it was rescheduled since the claim (it is no longer at
    /// `lease_until`).
    async fn release(&self, due: Due, lease_until: DateTime<Utc>) -> Result<()>;
}

/// `tenant:conversation`, the member both backends key a deadline by.
fn member(tenant: Uuid, conversation: Uuid) -> String {
    format!("{tenant}:{conversation}")
}

fn parse_member(m: &str) -> Option<Due> {
    let (t, c) = m.split_once(':')?;
    Some(Due { tenant: t.parse().ok()?, conversation: c.parse().ok()? })
}
