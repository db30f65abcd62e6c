//! [`ChannelStore`] for the embedded backend: maps in this process, same rules as Redis.

use super::channels::{Binding, ChannelStore, DeliveryRef, Opened, peer_key};
use super::memory::MemoryStore;
use crate::error::Result;
use crate::model::{Account, Address, Conversation, Delivery, Message, Participant};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn put_account(&self, a: &Account) -> Result<()> {
        self.channels.accounts.insert(a.id, a.clone());
        Ok(())
    }

    async fn get_account(&self, id: Uuid) -> Result<Option<Account>> {
        Ok(self.channels.accounts.get(&id).map(|a| a.clone()))
    }

    async fn list_accounts(&self, tenant: Uuid) -> Result<Vec<Account>> {
        let mut v: Vec<Account> =
            self.channels.accounts.iter().filter(|a| a.tenant_id == tenant).map(|a| a.clone()).collect();
        v.sort_by_key(|a| a.id);
        Ok(v)
    }

    async fn delete_account(&self, tenant: Uuid, id: Uuid) -> Result<bool> {
        let gone = self.channels.accounts.remove_if(&id, |_, a| a.tenant_id == tenant).is_some();
        if gone {
            self.channels.bindings.retain(|(acc, _), _| *acc != id);
        }
        Ok(gone)
    }

    async fn bind(&self, account: Uuid, peer: &Address, target: Binding) -> Result<Option<Binding>> {
        // The entry API holds the shard lock between the check and the insert: create-if-absent.
        match self.channels.bindings.entry((account, peer_key(peer))) {
            dashmap::Entry::Occupied(e) => Ok(Some(*e.get())),
            dashmap::Entry::Vacant(e) => {
                e.insert(target);
                Ok(None)
            }
        }
    }

    async fn binding(&self, account: Uuid, peer: &Address) -> Result<Option<Binding>> {
        Ok(self.channels.bindings.get(&(account, peer_key(peer))).map(|b| *b))
    }

    async fn unbind(&self, account: Uuid, peer: &Address, conversation: Uuid) -> Result<()> {
        self.channels.bindings.remove_if(&(account, peer_key(peer)), |_, b| b.conversation_id == conversation);
        Ok(())
    }

    async fn open_room(&self, account: Uuid, peer: &Address, c: &Conversation, p: &Participant) -> Result<Opened> {
        super::channels::open_in_steps(self, account, peer, c, p).await
    }

    async fn update_participant(&self, p: &Participant) -> Result<()> {
        self.replace_participant(p);
        Ok(())
    }

    async fn put_provider_ref(&self, account: Uuid, provider_message_id: &str, r: DeliveryRef) -> Result<()> {
        self.channels.provider_refs.insert((account, provider_message_id.to_string()), r);
        Ok(())
    }

    async fn provider_ref(&self, account: Uuid, provider_message_id: &str) -> Result<Option<DeliveryRef>> {
        Ok(self.channels.provider_refs.get(&(account, provider_message_id.to_string())).map(|r| *r))
    }

    async fn update_delivery(&self, conversation: Uuid, message: Uuid, d: &Delivery) -> Result<Option<Message>> {
        let mut changed = false;
        let m = self.with_message(conversation, message, |m| changed = m.apply_delivery(d));
        Ok(m.filter(|_| changed))
    }
}
