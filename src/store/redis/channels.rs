//! [`ChannelStore`] on Redis: accounts, the room-binding index, provider message references
//! and delivery-status updates of stored messages.
//!
//! Owns only the Redis side of these records; the rules (who may bind what, how a delivery
//! report changes a message) stay in `conversations` and `Message::apply_delivery`. `bind` is
//! a single `HSETNX` in a script, so two nodes racing on the same peer agree on one room.

use super::{RedisStore, decode, encode};
use crate::error::Result;
use crate::model::{Account, Address, Conversation, Delivery, Message, Participant};
use crate::redis::ToRedisArgsDyn;
use crate::store::channels::{Binding, ChannelStore, DeliveryRef, Opened, peer_key};
use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::cmd;
use uuid::Uuid;

/// Most bindings a node remembers as hints (`ChannelStore::binding_hint`); past it the hints
/// start over (a hint is only a guess: losing one costs one round trip, never a wrong room).
const HINTS_MAX: usize = 65_536;

/// The bindings this node last saw, per `(account, peer key)`: which room to read together
/// with the binding itself, so a known sender's webhook reads binding and room in one round
/// of I/O. Updated by every read and write of a binding on this node; another node's change
/// is found out by the binding read that always goes with the hint.
#[derive(Debug, Default)]
pub(super) struct Hints(dashmap::DashMap<(Uuid, String), Binding>);

impl Hints {
    fn get(&self, account: Uuid, peer: &Address) -> Option<Binding> {
        self.0.get(&(account, peer_key(peer))).map(|b| *b)
    }

    fn saw(&self, account: Uuid, peer: &Address, b: Option<Binding>) {
        match b {
            Some(b) => {
                if self.0.len() >= HINTS_MAX {
                    self.0.clear();
                }
                self.0.insert((account, peer_key(peer)), b);
            }
            None => {
                self.0.remove(&(account, peer_key(peer)));
            }
        }
    }

    fn forget_account(&self, account: Uuid) {
        self.0.retain(|(a, _), _| *a != account);
    }
}

#[async_trait]
impl ChannelStore for RedisStore {
    async fn put_account(&self, a: &Account) -> Result<()> {
        self.redis.query::<()>(cmd("SET").arg(self.keys.account(a.id)).arg(encode(a)?)).await?;
        let index = self.keys.tenant_accounts(a.tenant_id);
        self.redis.query::<()>(cmd("SADD").arg(index).arg(a.id.to_string())).await
    }

    async fn get_account(&self, id: Uuid) -> Result<Option<Account>> {
        let doc: Option<String> = self.redis.query(cmd("GET").arg(self.keys.account(id))).await?;
        doc.map(|d| decode(&d)).transpose()
    }

    async fn list_accounts(&self, tenant: Uuid) -> Result<Vec<Account>> {
        let ids: Vec<String> = self.redis.query(cmd("SMEMBERS").arg(self.keys.tenant_accounts(tenant))).await?;
        let ids: Vec<Uuid> = ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
        let found = try_join_all(ids.iter().map(|&id| self.get_account(id))).await?;
        let mut list: Vec<Account> = found.into_iter().flatten().filter(|a| a.tenant_id == tenant).collect();
        list.sort_by_key(|a| a.id);
        Ok(list)
    }

    async fn delete_account(&self, tenant: Uuid, id: Uuid) -> Result<bool> {
        match self.get_account(id).await? {
            Some(a) if a.tenant_id == tenant => {}
            _ => return Ok(false),
        }
        // Bindings first: an account that is gone must not keep routing peers into rooms.
        self.hints.forget_account(id);
        self.redis.query::<()>(cmd("DEL").arg(self.keys.bindings(id))).await?;
        let gone: i64 = self.redis.query(cmd("DEL").arg(self.keys.account(id))).await?;
        self.redis.query::<()>(cmd("SREM").arg(self.keys.tenant_accounts(tenant)).arg(id.to_string())).await?;
        Ok(gone == 1)
    }

    async fn bind(&self, account: Uuid, peer: &Address, target: Binding) -> Result<Option<Binding>> {
        let args: [&dyn ToRedisArgsDyn; 2] = [&peer_key(peer), &encode(&target)?];
        let existing: Option<String> =
            self.redis.script(&self.scripts.bind, &[self.keys.bindings(account)], &args).await?;
        let existing: Option<Binding> = existing.map(|d| decode(&d)).transpose()?;
        self.hints.saw(account, peer, Some(existing.unwrap_or(target)));
        Ok(existing)
    }

    async fn binding(&self, account: Uuid, peer: &Address) -> Result<Option<Binding>> {
        let doc: Option<String> =
            self.redis.query(cmd("HGET").arg(self.keys.bindings(account)).arg(peer_key(peer))).await?;
        let b: Option<Binding> = doc.map(|d| decode(&d)).transpose()?;
        self.hints.saw(account, peer, b);
        Ok(b)
    }

    fn binding_hint(&self, account: Uuid, peer: &Address) -> Option<Binding> {
        self.hints.get(account, peer)
    }

    async fn unbind(&self, account: Uuid, peer: &Address, conversation: Uuid) -> Result<()> {
        self.hints.saw(account, peer, None);
        let args: [&dyn ToRedisArgsDyn; 2] = [&peer_key(peer), &conversation.to_string()];
        self.redis.script::<i64>(&self.scripts.unbind, &[self.keys.bindings(account)], &args).await.map(|_| ())
    }

    async fn open_room(&self, account: Uuid, peer: &Address, c: &Conversation, p: &Participant) -> Result<Opened> {
        let opened = self.open(account, peer, c, p).await?;
        let b = match opened {
            Opened::Bound(existing) => existing,
            Opened::Created { .. } => Binding { conversation_id: c.id, participant_id: p.id },
        };
        self.hints.saw(account, peer, Some(b));
        Ok(opened)
    }

    async fn update_participant(&self, p: &Participant) -> Result<()> {
        let room = p.conversation_id;
        let keys = self.indexing_keys(p.tenant_id, room, &["parts"]);
        let entries = super::find::participant_entries(p);
        let [publish, channel, payload] = self.changed_publication(room);
        let args: [&dyn ToRedisArgsDyn; 7] =
            [&p.id.to_string(), &encode(p)?, &RedisStore::member(room), &entries, &publish, &channel, &payload];
        let updated = self.redis.script::<i64>(&self.scripts.update_participant, &keys, &args).await;
        self.rooms.invalidate(room);
        if updated? == 1 {
            self.settle_find(p.tenant_id, room).await?;
        }
        Ok(())
    }

    async fn put_provider_ref(&self, account: Uuid, provider_message_id: &str, r: DeliveryRef) -> Result<()> {
        let key = self.keys.provider_ref(account, provider_message_id);
        self.redis.query::<()>(cmd("SET").arg(key).arg(encode(&r)?).arg("EX").arg(self.provider_ref_ttl_secs)).await
    }

    async fn provider_ref(&self, account: Uuid, provider_message_id: &str) -> Result<Option<DeliveryRef>> {
        let doc: Option<String> =
            self.redis.query(cmd("GET").arg(self.keys.provider_ref(account, provider_message_id))).await?;
        doc.map(|d| decode(&d)).transpose()
    }

    async fn update_delivery(&self, conversation: Uuid, message: Uuid, d: &Delivery) -> Result<Option<Message>> {
        let changed = self.revise(conversation, message, &|m: &mut Message| Ok(m.apply_delivery(d))).await?;
        Ok(changed.filter(|(_, changed)| *changed).map(|(m, _)| m))
    }
}
