//! The embedded backend: everything in this process, nothing survives it.
//!
//! Each room's history sits behind its own `std::sync::Mutex`, so appends to different rooms
//! never contend, and within a room "assign seq, store, publish" happens under that one lock —
//! the in-memory equivalent of the Redis Lua script. Publishing is handing the publication to
//! the in-process bus (`LocalBus`, a non-blocking queue send), which the memory broker drains
//! into the one delivery handler, exactly as the Redis broker does with pub/sub: this store
//! never touches the hub. The lock is never held across `.await`. Nothing survives the
//! process: after a restart every conversation is gone (subscribe answers `not_found`).

use super::channels::{Binding, DeliveryRef};
use super::{Appended, ConversationFilter, Draft, MessageChange, RoomState, SeqRange, StatusSet, Store, Trimmed};
use crate::error::{Error, Result};
use crate::model::{Account, Conversation, ConversationStatus, Lifecycle, Message, Participant, Tenant};
use crate::wire::{LocalBus, Publication, message_frame_of};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

mod room_log;
use room_log::{RoomLog, lock, slice};

/// See the module docs.
#[derive(Debug)]
pub struct MemoryStore {
    bus: LocalBus,
    epoch: String,
    idempotency_ttl: Duration,
    tenants: DashMap<Uuid, Tenant>,
    keys: DashMap<String, Uuid>,
    conversations: DashMap<Uuid, Conversation>,
    /// Per tenant, conversation ids in creation order (UUIDv7 sorts by time).
    by_tenant: DashMap<Uuid, BTreeSet<Uuid>>,
    participants: DashMap<Uuid, Vec<Participant>>,
    rooms: DashMap<Uuid, Arc<Mutex<RoomLog>>>,
    pub(super) channels: ChannelMaps,
    /// Where appends write `message.created` for webhooks, under the room lock (in seq order).
    webhook_outbox: Option<Arc<dyn super::EventOutbox>>,
    /// Memberships of the rooms the broker listens to (`Store::members`); shared with it.
    members: Arc<super::RoomCache>,
}

/// The channel side of the memory backend (see `memory_channels.rs`).
#[derive(Debug, Default)]
pub(super) struct ChannelMaps {
    pub accounts: DashMap<Uuid, Account>,
    /// (account, `<type>:<target>`) → room
    pub bindings: DashMap<(Uuid, String), Binding>,
    /// (account, provider message id) → delivery
    pub provider_refs: DashMap<(Uuid, String), DeliveryRef>,
}

impl MemoryStore {
    /// Publications go to `bus`, which the memory broker drains.
    /// Appends write their drafts' `webhook_event`s into `outbox` (`Store::queues_webhook_events`).
    pub fn with_webhook_outbox(mut self, outbox: Arc<dyn super::EventOutbox>) -> Self {
        self.webhook_outbox = Some(outbox);
        self
    }

    /// Shares `cache` with the broker's handler (see `RedisStore::with_room_cache`).
    pub fn with_room_cache(mut self, cache: Arc<super::RoomCache>) -> Self {
        self.members = cache;
        self
    }

    /// A membership change of `room`: this node's cache drops it now (a post right after the
    /// change sees it), and the change is published on the bus like on Redis.
    fn members_changed(&self, room: Uuid) {
        self.members.invalidate(room);
        self.bus.publish(Publication::Changed { room });
    }

    pub fn new(bus: LocalBus, idempotency_ttl: Duration) -> Self {
        MemoryStore {
            bus,
            epoch: Uuid::new_v4().simple().to_string()[..8].to_string(),
            idempotency_ttl,
            tenants: DashMap::new(),
            keys: DashMap::new(),
            conversations: DashMap::new(),
            by_tenant: DashMap::new(),
            participants: DashMap::new(),
            rooms: DashMap::new(),
            channels: ChannelMaps::default(),
            webhook_outbox: None,
            members: super::RoomCache::new(),
        }
    }

    /// Replaces the stored participant with the same id.
    pub(super) fn replace_participant(&self, p: &Participant) {
        if let Some(mut list) = self.participants.get_mut(&p.conversation_id)
            && let Some(cur) = list.iter_mut().find(|q| q.id == p.id)
        {
            // A read marker is never lowered (as on Redis): `p` may come from a cached list.
            let read = cur.last_read_seq.max(p.last_read_seq);
            *cur = Participant { last_read_seq: read, ..p.clone() };
        }
        self.members_changed(p.conversation_id);
    }

    /// Applies `f` to a stored message and returns the result.
    pub(super) fn with_message(&self, conversation: Uuid, id: Uuid, f: impl FnOnce(&mut Message)) -> Option<Message> {
        let room = self.room(conversation)?;
        let mut log = lock(&room);
        let seq = *log.by_id.get(&id)?;
        let m = log.at_mut(seq)?;
        f(m);
        Some(m.clone())
    }

    fn room(&self, conversation: Uuid) -> Option<Arc<Mutex<RoomLog>>> {
        self.rooms.get(&conversation).map(|r| r.clone())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn put_tenant(&self, tenant: &Tenant, key_hashes: &[String]) -> Result<()> {
        self.tenants.insert(tenant.id, tenant.clone());
        for h in key_hashes {
            self.keys.insert(h.clone(), tenant.id);
        }
        Ok(())
    }

    async fn tenant_by_key_hash(&self, hash: &str) -> Result<Option<Tenant>> {
        let Some(id) = self.keys.get(hash).map(|r| *r) else { return Ok(None) };
        Ok(self.tenants.get(&id).map(|t| t.clone()))
    }

    async fn create_conversation(&self, c: &Conversation) -> Result<()> {
        self.rooms.insert(c.id, Arc::default());
        self.participants.insert(c.id, Vec::new());
        self.conversations.insert(c.id, c.clone());
        self.by_tenant.entry(c.tenant_id).or_default().insert(c.id);
        Ok(())
    }

    async fn get_conversation(&self, tenant: Uuid, id: Uuid) -> Result<Option<Conversation>> {
        Ok(self.conversations.get(&id).filter(|c| c.tenant_id == tenant).map(|c| c.clone()))
    }

    async fn list_conversations(&self, tenant: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Conversation>> {
        let ids: Vec<Uuid> = match self.by_tenant.get(&tenant) {
            Some(set) => match before {
                Some(b) => set.range(..b).rev().take(limit).copied().collect(),
                None => set.iter().rev().take(limit).copied().collect(),
            },
            None => return Ok(Vec::new()),
        };
        Ok(ids.iter().filter_map(|id| self.conversations.get(id).map(|c| c.clone())).collect())
    }

    async fn find_conversations(
        &self,
        tenant: Uuid,
        filter: &ConversationFilter,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Conversation>> {
        let Some(set) = self.by_tenant.get(&tenant) else { return Ok(Vec::new()) };
        let upper = before.map_or(Bound::Unbounded, Bound::Excluded);
        // Filtered while walking the ordered set: no index to keep, and a page costs at most
        // one pass over the tenant's conversations (participants read only when a filter needs
        // them).
        let matches = |c: &Conversation| {
            if !filter.needs_participants(c) {
                return filter.matches_conversation(c);
            }
            let parts = self.participants.get(&c.id).map(|l| l.clone()).unwrap_or_default();
            filter.matches(c, &parts)
        };
        Ok(set
            .range((Bound::Unbounded, upper))
            .rev()
            .filter_map(|id| self.conversations.get(id).map(|c| c.clone()))
            .filter(matches)
            .take(limit)
            .collect())
    }

    async fn set_owner(
        &self,
        tenant: Uuid,
        id: Uuid,
        agent: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        match self.conversations.get_mut(&id) {
            Some(mut c) if c.tenant_id == tenant => {
                c.set_owner(agent.map(str::to_string));
                c.tm_update = at;
                Ok(Some(c.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn update_conversation(&self, c: &Conversation) -> Result<bool> {
        match self.conversations.get_mut(&c.id) {
            Some(mut cur) if cur.tenant_id == c.tenant_id => {
                cur.name.clone_from(&c.name);
                cur.detail.clone_from(&c.detail);
                cur.metadata.clone_from(&c.metadata);
                cur.timers = c.timers;
                cur.tm_update = c.tm_update;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_status(
        &self,
        tenant: Uuid,
        id: Uuid,
        to: &Lifecycle,
        expect: &[ConversationStatus],
    ) -> Result<Option<StatusSet>> {
        match self.conversations.get_mut(&id) {
            Some(mut c) if c.tenant_id == tenant => {
                let previous = c.lifecycle.status;
                let applied = expect.contains(&previous);
                if applied {
                    c.lifecycle = to.clone();
                    c.tm_update = to.tm_status.unwrap_or(c.tm_update).max(c.tm_update);
                }
                Ok(Some(StatusSet { conversation: c.clone(), previous, applied }))
            }
            _ => Ok(None),
        }
    }

    async fn delete_conversation(&self, tenant: Uuid, id: Uuid) -> Result<bool> {
        if self.conversations.remove_if(&id, |_, c| c.tenant_id == tenant).is_none() {
            return Ok(false);
        }
        if let Some(mut set) = self.by_tenant.get_mut(&tenant) {
            set.remove(&id);
        }
        self.participants.remove(&id);
        self.members.invalidate(id);
        self.rooms.remove(&id);
        Ok(true)
    }

    async fn add_participant(&self, p: &Participant) -> Result<()> {
        let mut list = self.participants.get_mut(&p.conversation_id).ok_or(Error::NotFound("conversation"))?;
        if list.iter().any(|q| q.address.same_endpoint(&p.address)) {
            return Err(Error::Conflict(format!(
                "a participant with address {}:{} is already in this conversation",
                p.address.kind.as_str(),
                p.address.target
            )));
        }
        list.push(p.clone());
        drop(list);
        self.members_changed(p.conversation_id);
        Ok(())
    }

    async fn list_participants(&self, conversation: Uuid) -> Result<Vec<Participant>> {
        Ok(self.participants.get(&conversation).map(|l| l.clone()).unwrap_or_default())
    }

    async fn remove_participant(&self, conversation: Uuid, id: Uuid) -> Result<bool> {
        let Some(mut list) = self.participants.get_mut(&conversation) else { return Ok(false) };
        let before = list.len();
        list.retain(|p| p.id != id);
        let removed = list.len() != before;
        drop(list);
        self.members_changed(conversation);
        Ok(removed)
    }

    async fn members(&self, conversation: Uuid) -> Result<super::MemberList> {
        self.members.read(conversation, self.list_participants(conversation)).await
    }

    async fn mark_read(&self, conversation: Uuid, participant: Uuid, seq: u64) -> Result<()> {
        if let Some(mut list) = self.participants.get_mut(&conversation)
            && let Some(p) = list.iter_mut().find(|p| p.id == participant)
        {
            p.last_read_seq = p.last_read_seq.max(seq);
        }
        Ok(())
    }

    async fn append(&self, draft: Draft) -> Result<Appended> {
        let conversation = draft.message.conversation_id;
        let room = self.room(conversation).ok_or(Error::NotFound("conversation"))?;
        let (message, json) = {
            let mut log = lock(&room);
            if let Some(key) = &draft.idempotency_key
                && let Some(&(seq, at)) = log.idempotency.get(key)
                && at.elapsed() < self.idempotency_ttl
            {
                let Some(m) = log.at(seq) else { return Err(super::trimmed_original()) };
                return Ok(Appended { message: m.clone(), duplicate: true, reopens: false, status: None, json: None });
            }
            let mut message = draft.message;
            message.seq = log.seq() + 1;
            // Written once: the frame, the webhook outbox entry and the event all carry it.
            let json = serde_json::to_string(&message).map_err(|e| Error::internal_from("encode message", e))?;
            if let (Some(outbox), Some(ev)) = (&self.webhook_outbox, &draft.webhook_event) {
                outbox.push_work(&ev.fill(&json))?;
            }
            log.by_id.insert(message.id, message.seq);
            if let Some(key) = draft.idempotency_key {
                log.idempotency.insert(key, (message.seq, Instant::now()));
            }
            let frame = message_frame_of(&json);
            let internal = message.is_internal();
            self.bus.publish(Publication::Message { room: conversation, seq: message.seq, frame, internal });
            log.messages.push_back(message.clone());
            (message, json)
        };
        if let Some(mut c) = self.conversations.get_mut(&conversation) {
            c.last_seq = c.last_seq.max(message.seq);
        }
        Ok(Appended { message, duplicate: false, reopens: false, status: None, json: Some(json.into()) })
    }

    async fn get_message(&self, conversation: Uuid, id: Uuid) -> Result<Option<Message>> {
        let Some(room) = self.room(conversation) else { return Ok(None) };
        let log = lock(&room);
        Ok(log.by_id.get(&id).and_then(|&seq| log.at(seq)).cloned())
    }

    async fn change_message(
        &self,
        conversation: Uuid,
        id: Uuid,
        change: MessageChange<'_>,
    ) -> Result<Option<(Message, bool)>> {
        let Some(room) = self.room(conversation) else { return Ok(None) };
        let mut log = lock(&room);
        let Some(&seq) = log.by_id.get(&id) else { return Ok(None) };
        let Some(cur) = log.at_mut(seq) else { return Ok(None) };
        let mut m = cur.clone();
        let changed = change(&mut m)?;
        if changed {
            *cur = m.clone();
        }
        Ok(Some((m, changed)))
    }

    async fn messages(&self, conversation: Uuid, range: SeqRange) -> Result<Vec<Message>> {
        let Some(room) = self.room(conversation) else { return Ok(Vec::new()) };
        let log = lock(&room);
        Ok(log.messages.range(slice(log.trimmed, log.messages.len(), range)).cloned().collect())
    }

    async fn room_state(&self, conversation: Uuid) -> Result<Option<RoomState>> {
        Ok(self.room(conversation).map(|r| RoomState { seq: lock(&r).seq(), epoch: self.epoch.clone() }))
    }

    fn queues_webhook_events(&self) -> bool {
        self.webhook_outbox.is_some()
    }

    async fn first_retained_seq(&self, conversation: Uuid) -> Result<u64> {
        Ok(self.room(conversation).map_or(1, |r| lock(&r).trimmed + 1))
    }

    async fn trim_history(&self, conversation: Uuid, before: DateTime<Utc>, max: usize) -> Result<Trimmed> {
        let Some(room) = self.room(conversation) else { return Ok(Trimmed::default()) };
        // One bounded step under the lock: at most `max` pops, so an append waits for little.
        let mut log = lock(&room);
        let mut out = Trimmed::default();
        while out.removed < max && log.messages.front().is_some_and(|m| m.tm_create < before) {
            let Some(m) = log.messages.pop_front() else { break };
            log.trimmed += 1;
            log.by_id.remove(&m.id);
            out.removed += 1;
            out.medias.extend(m.medias);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
