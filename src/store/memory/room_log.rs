//! One room's history in the embedded backend: the log of messages (with what retention
//! trimmed off its front), the id index and the idempotency keys, and the slicing of a seq
//! range out of it.
//!
//! Owns the shape of the log only; `MemoryStore` owns the locking discipline (one
//! `std::sync::Mutex` per room, never held across `.await`) and the publishing.

use super::super::SeqRange;
use crate::model::Message;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;
use uuid::Uuid;

#[derive(Debug, Default)]
pub(super) struct RoomLog {
    /// `messages[i].seq == trimmed + i + 1`.
    pub messages: VecDeque<Message>,
    /// How many of the oldest messages retention removed (`Store::trim_history`).
    pub trimmed: u64,
    /// message id → seq
    pub by_id: HashMap<Uuid, u64>,
    /// idempotency key → (seq, when it was stored)
    pub idempotency: HashMap<String, (u64, Instant)>,
}

impl RoomLog {
    /// The room's newest seq.
    pub fn seq(&self) -> u64 {
        self.trimmed + self.messages.len() as u64
    }

    /// The message with `seq`, if still kept.
    pub fn at(&self, seq: u64) -> Option<&Message> {
        self.messages.get(seq.checked_sub(self.trimmed + 1)? as usize)
    }

    pub fn at_mut(&mut self, seq: u64) -> Option<&mut Message> {
        self.messages.get_mut(seq.checked_sub(self.trimmed + 1)? as usize)
    }
}

pub(super) fn lock(room: &Mutex<RoomLog>) -> std::sync::MutexGuard<'_, RoomLog> {
    // A panic elsewhere must not take the room down with it: the log itself stays consistent
    // because every mutation below is a single push/pop/insert.
    room.lock().unwrap_or_else(|p| p.into_inner())
}

/// The indexes of `range` in a log of `len` messages whose first has seq `trimmed + 1`.
pub(super) fn slice(trimmed: u64, len: usize, range: SeqRange) -> std::ops::Range<usize> {
    let len = len as u64;
    // Exclusive upper bound as an index: seq < before  <=>  index < before - 1 - trimmed.
    let end = range.before.map_or(len, |b| b.saturating_sub(1).saturating_sub(trimmed).min(len)) as usize;
    let start = match range.after {
        Some(a) => (a.saturating_sub(trimmed).min(end as u64) as usize).min(end),
        None => end.saturating_sub(range.limit),
    };
    let stop = (start + range.limit).min(end);
    start..stop
}
