//! The durable backend: all state in Redis, shared by every node pointing at it.
//!
//! Owns the mapping of the `Store` contract onto Redis data structures (atomic multi-key
//! changes in `scripts`, the `ChannelStore` side in `channels`; key layout and transport are
//! `crate::redis`). The append is one Lua script that assigns the seq, writes history and
//! publishes the frame on the room's channel; this store never fans out to the local hub
//! itself — the broker's subscription brings every publication back, this node's included,
//! to the broker's one handler, so there is one delivery path.
//! It does not subscribe to anything (the broker does) and knows nothing of WebSockets beyond
//! building the message frame once per append.

mod append;
mod channels;
mod codec;
mod epoch;
mod find;
mod history;
mod open;
mod owners;
mod reindex;
mod retention;
mod revise;
mod scripts;
mod status;

use super::{Appended, ConversationFilter, Draft, MessageChange, RoomState, SeqRange, StatusSet, Store, Trimmed};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{Conversation, ConversationStatus, Lifecycle, Message, Participant, Tenant};
use crate::redis::{Keys, RedisClient};
use append::append_outcome;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use codec::{decode, encode, is_stale, reply_at};
use epoch::new_epoch;
use futures_util::future::try_join_all;
use redis::cmd;
use scripts::Scripts;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// See the module docs.
#[derive(Debug)]
pub struct RedisStore {
    redis: RedisClient,
    keys: Keys,
    scripts: Scripts,
    history_max_len: u64,
    idempotency_ttl_secs: u64,
    provider_ref_ttl_secs: u64,
    /// Per room, the highest seq this node has seen (appended or read): a room found below
    /// it lost acknowledged writes and starts a new epoch (never reusing a seq under one).
    floors: dashmap::DashMap<Uuid, u64>,
    /// On a cluster the webhook outbox is in another slot than a room: the append script
    /// cannot write it (`Store::queues_webhook_events`).
    cluster: bool,
    /// `redis.trust_restarts`: rooms keep their epoch across Redis restarts.
    trust_restarts: bool,
    /// Memberships and conversations of the rooms the broker listens to (`Store::members`,
    /// `Store::cached_conversation`); shared with it.
    rooms: Arc<super::RoomCache>,
    /// Bindings as this node last saw them (`ChannelStore::binding_hint`).
    hints: channels::Hints,
}

impl RedisStore {
    pub fn new(redis: RedisClient, config: &Config) -> RedisStore {
        RedisStore {
            redis,
            keys: Keys::new(&config.redis.key_prefix),
            scripts: Scripts::new(),
            history_max_len: config.redis.history_max_len.max(1),
            idempotency_ttl_secs: config.store.idempotency_ttl_secs.max(1),
            provider_ref_ttl_secs: config.redis.provider_ref_ttl_secs.max(1),
            floors: dashmap::DashMap::new(),
            cluster: config.redis.cluster,
            trust_restarts: config.redis.trust_restarts,
            rooms: super::RoomCache::new(),
            hints: Default::default(),
        }
    }

    /// Shares `cache` with the broker's handler, which marks the rooms it listens to live.
    /// Without it no room is ever live, so nothing is cached.
    pub fn with_room_cache(mut self, cache: Arc<super::RoomCache>) -> RedisStore {
        self.rooms = cache;
        self
    }

    /// The publication arguments of every script that changes what the post path reads of a
    /// room: how and where it publishes `Publication::Changed` (see `scripts::ADD_PARTICIPANT`).
    fn changed_publication(&self, room: Uuid) -> [String; 3] {
        [
            self.redis.publish_command().to_string(),
            self.keys.room_channel(room),
            crate::wire::publication::CHANGED_TAG.to_string(),
        ]
    }

    /// Reads conversations by id, in the given order; `None` where the conversation is gone.
    async fn conversations_by_id(&self, ids: &[Uuid]) -> Result<Vec<Option<Conversation>>> {
        // Separate commands, issued together: on one server they are pipelined on the shared
        // connection; on a cluster each goes to the node owning that conversation.
        try_join_all(ids.iter().map(|&id| self.read_conversation(id))).await
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<()> {
        self.redis.query::<String>(&cmd("PING")).await.map(|_| ())
    }

    async fn put_tenant(&self, tenant: &Tenant, key_hashes: &[String]) -> Result<()> {
        let id = tenant.id.to_string();
        self.redis.query::<()>(cmd("SET").arg(self.keys.tenant(tenant.id)).arg(encode(tenant)?)).await?;
        try_join_all(
            key_hashes
                .iter()
                .map(|h| async { self.redis.query::<()>(cmd("SET").arg(self.keys.api_key(h)).arg(&id)).await }),
        )
        .await?;
        Ok(())
    }

    async fn tenant_by_key_hash(&self, hash: &str) -> Result<Option<Tenant>> {
        let id: Option<String> = self.redis.query(cmd("GET").arg(self.keys.api_key(hash))).await?;
        let Some(id) = id.and_then(|s| Uuid::parse_str(&s).ok()) else { return Ok(None) };
        let doc: Option<String> = self.redis.query(cmd("GET").arg(self.keys.tenant(id))).await?;
        doc.map(|d| decode(&d)).transpose()
    }

    async fn create_conversation(&self, c: &Conversation) -> Result<()> {
        // Indexes first (together): a conversation must never exist unlisted. If the create
        // below fails, the index entry points at nothing and `list_conversations` drops it later.
        let mut listed = cmd("ZADD");
        listed.arg(self.keys.tenant_conversations(c.tenant_id)).arg(0).arg(c.id.simple().to_string());
        tokio::try_join!(self.redis.query::<()>(&listed), self.index_owner(c.tenant_id, c.id, 0, None))?;
        let epoch = new_epoch();
        let mut keys = self.indexing_keys(c.tenant_id, c.id, &[]);
        keys.insert(0, self.keys.conversation(c.id));
        let (status, name) = (find::status_entries(c.lifecycle.status), find::name_entries(&c.name));
        let args: [&dyn crate::redis::ToRedisArgsDyn; 7] =
            [&c.tenant_id.to_string(), &encode(c)?, &epoch, &self.run_id().await?, &Self::member(c.id), &status, &name];
        let created: i64 = self.redis.script(&self.scripts.create_conversation, &keys, &args).await?;
        if created == 0 {
            return Err(Error::Conflict(format!("conversation {} already exists", c.id)));
        }
        self.settle_find(c.tenant_id, c.id).await
    }

    async fn get_conversation(&self, tenant: Uuid, id: Uuid) -> Result<Option<Conversation>> {
        Ok(self.read_conversation(id).await?.filter(|c| c.tenant_id == tenant))
    }

    async fn cached_conversation(&self, tenant: Uuid, id: Uuid) -> Result<Option<Arc<Conversation>>> {
        Ok(self.rooms.read_conversation(id, self.read_conversation(id)).await?.filter(|c| c.tenant_id == tenant))
    }

    async fn list_conversations(&self, tenant: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Conversation>> {
        let index = self.keys.tenant_conversations(tenant);
        let mut max = before.map_or_else(|| "+".to_string(), |b| format!("({}", b.simple()));
        let mut out = Vec::with_capacity(limit);
        // Loops only when index entries point at no conversation (a create or delete
        // interrupted between its two steps): the page is refilled past them.
        while out.len() < limit {
            let want = limit - out.len();
            let members: Vec<String> = self
                .redis
                .query(cmd("ZREVRANGEBYLEX").arg(&index).arg(&max).arg("-").arg("LIMIT").arg(0).arg(want))
                .await?;
            let ids: Vec<Uuid> = members.iter().filter_map(|m| Uuid::parse_str(m).ok()).collect();
            for (id, c) in ids.iter().zip(self.conversations_by_id(&ids).await?) {
                match c {
                    Some(c) if c.tenant_id == tenant => out.push(c),
                    // A young entry may belong to a create still in flight; leave it alone.
                    _ if is_stale(*id) => {
                        self.redis.query::<()>(cmd("ZREM").arg(&index).arg(id.simple().to_string())).await?
                    }
                    _ => {}
                }
            }
            match members.last() {
                Some(last) if members.len() == want => max = format!("({last}"),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn find_conversations(
        &self,
        t: Uuid,
        f: &ConversationFilter,
        b: Option<Uuid>,
        n: usize,
    ) -> Result<Vec<Conversation>> {
        self.find(t, f, b, n).await
    }

    async fn count_conversations(&self, t: Uuid, f: &ConversationFilter, cap: usize) -> Result<usize> {
        self.count(t, f, cap).await
    }

    async fn set_owner(
        &self,
        t: Uuid,
        id: Uuid,
        agent: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        self.write_owner(t, id, agent, at).await
    }

    async fn update_conversation(&self, c: &Conversation) -> Result<bool> {
        let name = find::name_entries(&c.name);
        let [publish, channel, payload] = self.changed_publication(c.id);
        let args: [&dyn crate::redis::ToRedisArgsDyn; 7] =
            [&c.tenant_id.to_string(), &encode(c)?, &Self::member(c.id), &name, &publish, &channel, &payload];
        let mut keys = self.indexing_keys(c.tenant_id, c.id, &[]);
        keys.insert(0, self.keys.conversation(c.id));
        let n = self.redis.script::<i64>(&self.scripts.update_conversation, &keys, &args).await;
        self.rooms.invalidate(c.id);
        let n = n?;
        if n == 1 {
            self.settle_find(c.tenant_id, c.id).await?;
        }
        Ok(n == 1)
    }

    async fn set_status(
        &self,
        tenant: Uuid,
        id: Uuid,
        to: &Lifecycle,
        expect: &[ConversationStatus],
    ) -> Result<Option<StatusSet>> {
        self.write_status(tenant, id, to, expect).await
    }

    async fn delete_conversation(&self, tenant: Uuid, id: Uuid) -> Result<bool> {
        let mut keys = self.keys.room_keys(id);
        let (count, ix) = (keys.len(), keys.iter().position(|k| *k == self.keys.room(id, "ix")).unwrap_or(0) + 1);
        keys.extend(self.find_keys(tenant));
        let [publish, channel, payload] = self.changed_publication(id);
        let args: [&dyn crate::redis::ToRedisArgsDyn; 7] =
            [&tenant.to_string(), &Self::member(id), &count, &ix, &publish, &channel, &payload];
        let n = self.redis.script::<i64>(&self.scripts.delete_conversation, &keys, &args).await;
        self.rooms.invalidate(id);
        let n = n?;
        if n == 1 {
            self.unindex(tenant, id).await?;
            self.settle_find(tenant, id).await?;
        }
        Ok(n == 1)
    }

    async fn add_participant(&self, p: &Participant) -> Result<()> {
        let room = p.conversation_id;
        let mut keys = self.indexing_keys(p.tenant_id, room, &["parts", "eps"]);
        keys.insert(0, self.keys.conversation(room));
        let endpoint = format!("{}:{}", p.address.kind.as_str(), p.address.target);
        let entries = find::participant_entries(p);
        let [publish, channel, payload] = self.changed_publication(room);
        let args: [&dyn crate::redis::ToRedisArgsDyn; 8] =
            [&p.id.to_string(), &endpoint, &encode(p)?, &Self::member(room), &entries, &publish, &channel, &payload];
        let added = self.redis.script::<i64>(&self.scripts.add_participant, &keys, &args).await;
        self.rooms.invalidate(room);
        match added? {
            1 => self.settle_find(p.tenant_id, room).await,
            0 => Err(Error::Conflict(format!(
                "a participant with address {}:{} is already in this conversation",
                p.address.kind.as_str(),
                p.address.target
            ))),
            _ => Err(Error::NotFound("conversation")),
        }
    }

    async fn list_participants(&self, conversation: Uuid) -> Result<Vec<Participant>> {
        let mut pipe = redis::pipe();
        pipe.cmd("HVALS").arg(self.keys.room(conversation, "parts"));
        pipe.cmd("HGETALL").arg(self.keys.room(conversation, "read"));
        let (docs, read): (Vec<String>, HashMap<String, u64>) = self.redis.pipe(&pipe).await?;
        let mut list = docs.iter().map(|d| decode::<Participant>(d)).collect::<Result<Vec<_>>>()?;
        for p in &mut list {
            p.last_read_seq = read.get(&p.id.to_string()).copied().unwrap_or(0).max(p.last_read_seq);
        }
        // UUIDv7 ids: creation order, as the memory store keeps it.
        list.sort_by_key(|p| p.id);
        Ok(list)
    }

    async fn remove_participant(&self, conversation: Uuid, id: Uuid) -> Result<bool> {
        // The tenant names the filter index the removal unfiles the participant's entries from.
        let Some(tenant) = self.tenant_of(conversation).await? else { return Ok(false) };
        let keys = self.indexing_keys(tenant, conversation, &["parts", "eps", "read"]);
        let [publish, channel, payload] = self.changed_publication(conversation);
        let args: [&dyn crate::redis::ToRedisArgsDyn; 5] =
            [&id.to_string(), &Self::member(conversation), &publish, &channel, &payload];
        let removed = self.redis.script(&self.scripts.remove_participant, &keys, &args).await;
        self.rooms.invalidate(conversation);
        let n: i64 = removed?;
        if n == 1 {
            self.settle_find(tenant, conversation).await?;
        }
        Ok(n == 1)
    }

    async fn members(&self, conversation: Uuid) -> Result<super::MemberList> {
        self.rooms.read(conversation, self.list_participants(conversation)).await
    }

    async fn mark_read(&self, conversation: Uuid, participant: Uuid, seq: u64) -> Result<()> {
        let keys = ["parts", "read"].map(|p| self.keys.room(conversation, p));
        let args: [&dyn crate::redis::ToRedisArgsDyn; 2] = [&participant.to_string(), &seq];
        self.redis.script::<i64>(&self.scripts.mark_read, &keys, &args).await.map(|_| ())
    }

    async fn append(&self, draft: Draft) -> Result<Appended> {
        let call = self.append_call(&draft, &self.run_id().await?)?;
        let reply: Vec<redis::Value> = self.redis.script(&self.scripts.append, &call.keys, &call.args()).await?;
        self.observe(append_outcome(&reply, draft.message, &call))
    }

    async fn append_many(&self, drafts: Vec<Draft>) -> Vec<Result<Appended>> {
        if drafts.len() < 2 {
            let mut out = Vec::new();
            for d in drafts {
                out.push(self.append(d).await);
            }
            return out;
        }
        // One pipeline per room: a room's keys share a hash slot (one cluster node), and
        // commands on one connection run in the order sent, so seqs follow the drafts' order.
        let mut rooms: Vec<(Uuid, Vec<usize>)> = Vec::new();
        for (i, d) in drafts.iter().enumerate() {
            let room = d.message.conversation_id;
            match rooms.iter_mut().find(|(r, _)| *r == room) {
                Some((_, idx)) => idx.push(i),
                None => rooms.push((room, vec![i])),
            }
        }
        let mut slots: Vec<Option<Draft>> = drafts.into_iter().map(Some).collect();
        let groups: Vec<Vec<Draft>> =
            rooms.iter().map(|(_, idx)| idx.iter().filter_map(|&i| slots[i].take()).collect()).collect();
        let done = futures_util::future::join_all(groups.into_iter().map(|g| self.append_pipelined(g))).await;
        let mut out: Vec<Option<Result<Appended>>> = (0..slots.len()).map(|_| None).collect();
        for ((_, idx), results) in rooms.iter().zip(done) {
            for (&i, r) in idx.iter().zip(results) {
                out[i] = Some(r);
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::internal("append result missing")))).collect()
    }

    async fn get_message(&self, conversation: Uuid, id: Uuid) -> Result<Option<Message>> {
        self.message_doc(conversation, id).await?.map(|d| decode(&d)).transpose()
    }

    async fn change_message(
        &self,
        conversation: Uuid,
        id: Uuid,
        change: MessageChange<'_>,
    ) -> Result<Option<(Message, bool)>> {
        self.revise(conversation, id, change).await
    }

    async fn messages(&self, conversation: Uuid, range: SeqRange) -> Result<Vec<Message>> {
        self.read_messages(conversation, range).await
    }

    async fn room_state(&self, conversation: Uuid) -> Result<Option<RoomState>> {
        self.read_room_state(conversation).await
    }

    async fn claimed_position(&self, conversation: Uuid, seq: u64) -> Result<Option<RoomState>> {
        self.advance(conversation, seq).await
    }

    fn queues_webhook_events(&self) -> bool {
        !self.cluster
    }

    async fn first_retained_seq(&self, conversation: Uuid) -> Result<u64> {
        self.read_first_retained_seq(conversation).await
    }

    async fn trim_history(&self, conversation: Uuid, before: DateTime<Utc>, max: usize) -> Result<Trimmed> {
        self.trim(conversation, before, max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_carry_the_seq() {
        assert_eq!(codec::seq_of_stream_id("42-1").unwrap(), 42);
    }
}
