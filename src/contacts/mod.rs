//! Contacts as stored: documents, the address index, the search index, tombstones and each
//! contact's conversations — behind one seam with the house's two backends, [`memory`] and
//! [`redis`].
//!
//! Why one write method: every change to contacts (create, edit, merge, erase) must move
//! addresses between owners, search terms and conversation indexes **atomically**, or two
//! inbound messages racing, or two merges racing, could leave an address with two owners or
//! none. So the rules that decide a change live above (`conversations::contacts`), and a change
//! reaches the store as one [`Change`]: the contacts as the caller read them (a compare-and-set
//! guard), the contacts as they should be, the contacts to remove. Both backends apply a change
//! all or nothing — memory under one lock, Redis in one script on the tenant's slot — and
//! answer [`Applied::Stale`] when a guard no longer holds, so the caller re-reads and retries.
//! Who may change what, validation and events are not here.

pub mod memory;
pub mod redis;

use crate::error::Result;
use crate::model::{Contact, ContactAddress};
use async_trait::async_trait;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Why a contact id no longer names a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tomb {
    /// Merged into this contact (which may itself have been merged since).
    Merged(Uuid),
    /// Erased on request: nothing of it is kept.
    Erased,
    /// Deleted (without erasure).
    Deleted,
}

impl Tomb {
    pub fn encode(self) -> String {
        match self {
            Tomb::Merged(id) => format!("merged:{id}"),
            Tomb::Erased => "erased".into(),
            Tomb::Deleted => "deleted".into(),
        }
    }

    pub fn decode(s: &str) -> Option<Tomb> {
        match s {
            "erased" => Some(Tomb::Erased),
            "deleted" => Some(Tomb::Deleted),
            _ => s.strip_prefix("merged:")?.parse().ok().map(Tomb::Merged),
        }
    }
}

/// An address key (`<type>:<target>`) and the contact it goes to or comes from.
pub type Owned = (String, Uuid);

/// One atomic change of a tenant's contacts.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// Contacts to write, each with the version the caller read (`None`: it must not exist).
    pub put: Vec<(Option<Contact>, Contact)>,
    /// Contacts to remove, as the caller read them, and the tombstone they leave.
    pub remove: Vec<(Contact, Tomb)>,
    /// `(from, into)`: `from`'s conversations join `into`'s (a merge).
    pub move_conversations: Option<(Uuid, Uuid)>,
}

/// The outcome of [`ContactStore::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// A contact was no longer as the caller read it: nothing changed; re-read and retry.
    Stale,
    /// `address` belongs to another contact (`owner`): nothing changed.
    Taken {
        address: String,
        owner: Uuid,
    },
}

impl Change {
    /// Address claims (`key`, new owner) and releases (`key`, old owner) this change makes.
    pub fn claims_and_releases(&self) -> (Vec<Owned>, Vec<Owned>) {
        let mut claims = Vec::new();
        let mut releases = Vec::new();
        for (old, new) in &self.put {
            let before: BTreeSet<String> =
                old.iter().flat_map(|o| o.addresses.iter().map(ContactAddress::key)).collect();
            let after: BTreeSet<String> = new.addresses.iter().map(ContactAddress::key).collect();
            claims.extend(after.difference(&before).map(|k| (k.clone(), new.id)));
            releases.extend(before.difference(&after).map(|k| (k.clone(), new.id)));
        }
        for (old, _) in &self.remove {
            releases.extend(old.addresses.iter().map(|a| (a.key(), old.id)));
        }
        (claims, releases)
    }

    /// Search entries (`term\x01id`) this change removes and adds.
    pub fn term_changes(&self) -> (Vec<String>, Vec<String>) {
        let entries =
            |c: &Contact| -> BTreeSet<String> { c.search_terms().iter().map(|t| term_entry(t, c.id)).collect() };
        let mut gone = Vec::new();
        let mut added = Vec::new();
        for (old, new) in &self.put {
            let before = old.as_ref().map(entries).unwrap_or_default();
            let after = entries(new);
            gone.extend(before.difference(&after).cloned());
            added.extend(after.difference(&before).cloned());
        }
        for (old, _) in &self.remove {
            gone.extend(entries(old));
        }
        (gone, added)
    }

    /// Ids of the contacts this change removes (their addresses may pass to another in it).
    pub fn removing(&self) -> Vec<Uuid> {
        self.remove.iter().map(|(c, _)| c.id).collect()
    }
}

/// Separates a search term from the contact id in a search-index entry.
pub const TERM_SEP: char = '\u{1}';

/// A search term or query as the index holds it: lower case, no control characters.
pub fn clean_term(term: &str) -> String {
    term.trim().to_lowercase().chars().filter(|c| !c.is_control()).collect()
}

/// A search-index entry: the clean term, the separator, the id.
pub fn term_entry(term: &str, id: Uuid) -> String {
    format!("{}{TERM_SEP}{}", clean_term(term), id.simple())
}

/// The contact id of a search-index entry.
pub fn entry_id(entry: &str) -> Option<Uuid> {
    Uuid::parse_str(entry.rsplit(TERM_SEP).next()?).ok()
}

#[async_trait]
pub trait ContactStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies `change` all or nothing (see the module docs).
    async fn apply(&self, tenant: Uuid, change: &Change) -> Result<Applied>;
    /// `None` also for another tenant's contact.
    async fn get(&self, tenant: Uuid, id: Uuid) -> Result<Option<Contact>>;
    /// Why `id` names no contact any more, if it once did.
    async fn tomb(&self, tenant: Uuid, id: Uuid) -> Result<Option<Tomb>>;
    /// The contact holding `address` (`<type>:<target>`).
    async fn by_address(&self, tenant: Uuid, address: &str) -> Result<Option<Uuid>>;
    /// Newest first; `before` is the id of the last contact of the previous page.
    async fn list(&self, tenant: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Contact>>;
    /// Contacts with a search term starting with `prefix` (lower-case), at most `limit`.
    async fn search(&self, tenant: Uuid, prefix: &str, limit: usize) -> Result<Vec<Contact>>;
    /// Records that `contact` takes part in `conversation`.
    async fn link_conversation(&self, tenant: Uuid, contact: Uuid, conversation: Uuid) -> Result<()>;
    /// The conversations `contact` took part in, newest first, below `before`.
    async fn conversations(&self, tenant: Uuid, contact: Uuid, before: Option<Uuid>, limit: usize)
    -> Result<Vec<Uuid>>;
    /// Drops a conversation from a contact's list (the conversation was deleted).
    async fn unlink_conversation(&self, tenant: Uuid, contact: Uuid, conversation: Uuid) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AddressType;

    #[test]
    fn tombs_round_trip() {
        let id = Uuid::now_v7();
        for t in [Tomb::Merged(id), Tomb::Erased, Tomb::Deleted] {
            assert_eq!(Tomb::decode(&t.encode()), Some(t));
        }
        assert_eq!(Tomb::decode("merged:nope"), None);
    }

    #[test]
    fn a_merge_moves_addresses_and_terms() {
        let t = crate::model::now();
        let c = |name: &str, target: &str| Contact {
            id: Uuid::now_v7(),
            tenant_id: Uuid::nil(),
            name: name.into(),
            email: None,
            metadata: serde_json::json!({}),
            addresses: vec![ContactAddress { kind: AddressType::Tel, target: target.into() }],
            tm_create: t,
            tm_update: t,
        };
        let (into, from) = (c("Ann", "+1"), c("Bob", "+2"));
        let mut merged = into.clone();
        merged.addresses.extend(from.addresses.clone());
        let ch = Change {
            put: vec![(Some(into.clone()), merged)],
            remove: vec![(from.clone(), Tomb::Merged(into.id))],
            move_conversations: Some((from.id, into.id)),
        };
        let (claims, releases) = ch.claims_and_releases();
        assert_eq!(claims, vec![("tel:+2".to_string(), into.id)]);
        assert_eq!(releases, vec![("tel:+2".to_string(), from.id)]);
        let (gone, added) = ch.term_changes();
        assert!(gone.contains(&term_entry("bob", from.id)));
        assert!(added.contains(&term_entry("+2", into.id)));
        assert_eq!(entry_id(&term_entry("x", into.id)), Some(into.id));
    }
}
