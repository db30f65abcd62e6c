//! [`ContactStore`] in process memory: one lock per store, so a [`Change`] is trivially atomic.
//!
//! Contacts are small and few next to messages, and a change touches a handful of entries,
//! so one `Mutex` is both the simplest and fast enough; no lock is held across an `.await`.

use super::{Applied, Change, ContactStore, Tomb, clean_term, entry_id};
use crate::error::Result;
use crate::model::Contact;
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

#[derive(Debug, Default)]
struct Book {
    docs: HashMap<Uuid, Contact>,
    /// `<type>:<target>` → contact.
    addresses: HashMap<String, Uuid>,
    /// Search entries (`term\x01id`), ordered so a prefix is a range.
    terms: BTreeSet<String>,
    tombs: HashMap<Uuid, Tomb>,
    /// Contact → its conversations (UUIDv7: ordered by creation).
    conversations: HashMap<Uuid, BTreeSet<Uuid>>,
}

#[derive(Debug, Default)]
pub struct MemoryContacts {
    books: Mutex<HashMap<Uuid, Book>>,
}

impl MemoryContacts {
    fn with<T>(&self, tenant: Uuid, f: impl FnOnce(&mut Book) -> T) -> T {
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        f(books.entry(tenant).or_default())
    }
}

#[async_trait]
impl ContactStore for MemoryContacts {
    async fn apply(&self, tenant: Uuid, change: &Change) -> Result<Applied> {
        self.with(tenant, |b| {
            let fresh = |id: Uuid, read: Option<&Contact>| b.docs.get(&id) == read;
            if !change.put.iter().all(|(old, new)| fresh(new.id, old.as_ref()))
                || !change.remove.iter().all(|(old, _)| fresh(old.id, Some(old)))
            {
                return Ok(Applied::Stale);
            }
            let removing = change.removing();
            let (claims, releases) = change.claims_and_releases();
            for (key, id) in &claims {
                if let Some(owner) = b.addresses.get(key)
                    && owner != id
                    && !removing.contains(owner)
                {
                    return Ok(Applied::Taken { address: key.clone(), owner: *owner });
                }
            }
            for (key, id) in releases {
                if b.addresses.get(&key) == Some(&id) {
                    b.addresses.remove(&key);
                }
            }
            for (key, id) in claims {
                b.addresses.insert(key, id);
            }
            let (gone, added) = change.term_changes();
            for t in gone {
                b.terms.remove(&t);
            }
            b.terms.extend(added);
            for (_, new) in &change.put {
                b.docs.insert(new.id, new.clone());
            }
            for (old, tomb) in &change.remove {
                b.docs.remove(&old.id);
                b.tombs.insert(old.id, *tomb);
            }
            if let Some((from, into)) = change.move_conversations {
                let moved = b.conversations.remove(&from).unwrap_or_default();
                b.conversations.entry(into).or_default().extend(moved);
            }
            Ok(Applied::Done)
        })
    }

    async fn get(&self, tenant: Uuid, id: Uuid) -> Result<Option<Contact>> {
        Ok(self.with(tenant, |b| b.docs.get(&id).cloned()))
    }

    async fn tomb(&self, tenant: Uuid, id: Uuid) -> Result<Option<Tomb>> {
        Ok(self.with(tenant, |b| b.tombs.get(&id).copied()))
    }

    async fn by_address(&self, tenant: Uuid, address: &str) -> Result<Option<Uuid>> {
        Ok(self.with(tenant, |b| b.addresses.get(address).copied()))
    }

    async fn list(&self, tenant: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Contact>> {
        Ok(self.with(tenant, |b| {
            let mut ids: Vec<Uuid> = b.docs.keys().filter(|id| before.is_none_or(|x| **id < x)).copied().collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids.into_iter().take(limit).filter_map(|id| b.docs.get(&id).cloned()).collect()
        }))
    }

    async fn search(&self, tenant: Uuid, prefix: &str, limit: usize) -> Result<Vec<Contact>> {
        let start = clean_term(prefix);
        let start = start.as_str();
        Ok(self.with(tenant, |b| {
            let mut out: Vec<Contact> = Vec::new();
            for e in b.terms.range(start.to_string()..).take_while(|e| e.starts_with(start)) {
                if out.len() == limit {
                    break;
                }
                if let Some(c) = entry_id(e).and_then(|id| b.docs.get(&id))
                    && !out.iter().any(|x| x.id == c.id)
                {
                    out.push(c.clone());
                }
            }
            out
        }))
    }

    async fn link_conversation(&self, tenant: Uuid, contact: Uuid, conversation: Uuid) -> Result<()> {
        self.with(tenant, |b| b.conversations.entry(contact).or_default().insert(conversation));
        Ok(())
    }

    async fn conversations(
        &self,
        tenant: Uuid,
        contact: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Uuid>> {
        Ok(self.with(tenant, |b| {
            let Some(set) = b.conversations.get(&contact) else { return Vec::new() };
            set.iter().rev().filter(|id| before.is_none_or(|x| **id < x)).take(limit).copied().collect()
        }))
    }

    async fn unlink_conversation(&self, tenant: Uuid, contact: Uuid, conversation: Uuid) -> Result<()> {
        self.with(tenant, |b| b.conversations.get_mut(&contact).map(|s| s.remove(&conversation)));
        Ok(())
    }
}
