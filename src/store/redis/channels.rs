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
        self.redis.query::<()>(cmd("DEL").arg(self.keys.bindings(id))).await?;
        let gone: i64 = self.redis.query(cmd("DEL").arg(self.keys.account(id))).await?;
        self.redis.query::<()>(cmd("SREM").arg(self.keys.tenant_accounts(tenant)).arg(id.to_string())).await?;
        Ok(gone == 1)
    }

    async fn bind(&self, account: Uuid, peer: &Address, target: Binding) -> Result<Option<Binding>> {
        let args: [&dyn ToRedisArgsDyn; 2] = [&peer_key(peer), &encode(&target)?];
        let existing: Option<String> =
            self.redis.script(&self.scripts.bind, &[self.keys.bindings(account)], &args).await?;
        existing.map(|d| decode(&d)).transpose()
    }

    async fn binding(&self, account: Uuid, peer: &Address) -> Result<Option<Binding>> {
        let doc: Option<String> =
            self.redis.query(cmd("HGET").arg(self.keys.bindings(account)).arg(peer_key(peer))).await?;
        doc.map(|d| decode(&d)).transpose()
    }

    async fn unbind(&self, account: Uuid, peer: &Address, conversation: Uuid) -> Result<()> {
        let args: [&dyn ToRedisArgsDyn; 2] = [&peer_key(peer), &conversation.to_string()];
        self.redis.script::<i64>(&self.scripts.unbind, &[self.keys.bindings(account)], &args).await.map(|_| ())
    }

    async fn open_room(&self, account: Uuid, peer: &Address, c: &Conversation, p: &Participant) -> Result<Opened> {
        self.open(account, peer, c, p).await
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
