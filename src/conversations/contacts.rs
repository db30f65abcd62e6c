//! Contacts as the rest of the system changes them: create, edit, delete, the contact of a new
//! participant, merge, and the conversations of a contact.
//!
//! Every write is read → decide → `ContactStore::apply` with the read as its guard, retried
//! when another writer got in between (`Applied::Stale`), so two inbound messages from one new
//! address, or two merges of the same pair, settle on one outcome on any number of nodes.
//! Erasure and export live in `erase.rs`; HTTP shapes in `api::contacts`.

use crate::app::AppState;
use crate::contacts::{Applied, Change, Tomb};
use crate::error::{Error, Result};
use crate::events::emit;
use crate::model::{Address, AddressType, Contact, ContactAddress, Conversation, now};
use crate::wire::{Event, EventKind};
use uuid::Uuid;

/// How many times a change is re-read and re-tried when others keep getting in first.
pub(super) const ATTEMPTS: usize = 16;

/// What a caller may set on a contact.
#[derive(Debug, Clone, Default)]
pub struct ContactFields {
    pub name: Option<String>,
    /// `Some(None)` clears it.
    pub email: Option<Option<String>>,
    pub metadata: Option<serde_json::Value>,
    /// Replaces the whole list when given.
    pub addresses: Option<Vec<ContactAddress>>,
}

/// `address` in its one spelling: phone numbers in E.164, email in lower case. Agents are no
/// contacts (422).
pub fn normalise(state: &AppState, a: &ContactAddress) -> Result<ContactAddress> {
    let target = a.target.trim();
    super::check_name(state, "address.target", target)?;
    let target = match a.kind {
        AddressType::Agent => return Err(Error::invalid("invalid_address", "agents are not contacts")),
        _ if target.is_empty() => return Err(Error::invalid("invalid_address", "address.target must not be empty")),
        k if crate::phone::is_phone(k) => crate::phone::e164(target, None)?,
        AddressType::Email => target.to_ascii_lowercase(),
        _ => target.to_string(),
    };
    Ok(ContactAddress { kind: a.kind, target })
}

fn check(state: &AppState, c: &Contact) -> Result<()> {
    super::check_name(state, "name", &c.name)?;
    if let Some(e) = &c.email {
        super::check_name(state, "email", e)?;
    }
    if !c.metadata.is_object() {
        return Err(Error::invalid("invalid_metadata", "metadata must be a JSON object"));
    }
    if c.addresses.len() > 64 {
        return Err(Error::invalid("too_many_addresses", "a contact has at most 64 addresses"));
    }
    Ok(())
}

fn taken(address: &str, owner: Uuid) -> Error {
    Error::Conflict(format!("{address} already belongs to contact {owner}"))
}

pub(super) fn event(kind: EventKind, tenant: Uuid, data: impl serde::Serialize) -> Event {
    Event::new(kind, tenant, None, data)
}

/// A contact of `tenant`, or 404 (saying where a merged one went).
pub async fn get(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Contact> {
    if let Some(c) = state.contacts.get(tenant, id).await? {
        return Ok(c);
    }
    Err(Error::NotFound("contact"))
}

/// The contact `id` is now: itself, or the contact it was merged into (followed to the end).
pub async fn current(state: &AppState, tenant: Uuid, mut id: Uuid) -> Result<Option<Contact>> {
    for _ in 0..ATTEMPTS {
        if let Some(c) = state.contacts.get(tenant, id).await? {
            return Ok(Some(c));
        }
        match state.contacts.tomb(tenant, id).await? {
            Some(Tomb::Merged(into)) => id = into,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

pub async fn create(state: &AppState, tenant: Uuid, f: ContactFields) -> Result<Contact> {
    let t = now();
    let mut c = Contact {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        name: f.name.unwrap_or_default(),
        email: f.email.flatten().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()),
        metadata: f.metadata.unwrap_or_else(|| serde_json::json!({})),
        addresses: Vec::new(),
        tm_create: t,
        tm_update: t,
    };
    for a in f.addresses.unwrap_or_default() {
        let a = normalise(state, &a)?;
        if !c.has_address(&a) {
            c.addresses.push(a);
        }
    }
    check(state, &c)?;
    match state.contacts.apply(tenant, &Change { put: vec![(None, c.clone())], ..Default::default() }).await? {
        Applied::Done => {}
        Applied::Taken { address, owner } => return Err(taken(&address, owner)),
        Applied::Stale => return Err(Error::Conflict("contact id already in use".into())),
    }
    emit(state, event(EventKind::ContactCreated, tenant, &c)).await;
    Ok(c)
}

pub async fn update(state: &AppState, tenant: Uuid, id: Uuid, f: ContactFields) -> Result<Contact> {
    let addresses = match &f.addresses {
        Some(list) => {
            let mut v: Vec<ContactAddress> = Vec::new();
            for a in list {
                let a = normalise(state, a)?;
                if !v.contains(&a) {
                    v.push(a);
                }
            }
            Some(v)
        }
        None => None,
    };
    for _ in 0..ATTEMPTS {
        let old = get(state, tenant, id).await?;
        let mut c = old.clone();
        if let Some(n) = &f.name {
            c.name = n.clone();
        }
        if let Some(e) = &f.email {
            c.email = e.as_ref().map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
        }
        if let Some(m) = &f.metadata {
            c.metadata = m.clone();
        }
        if let Some(a) = &addresses {
            c.addresses = a.clone();
        }
        c.tm_update = now();
        check(state, &c)?;
        let renamed = c.name != old.name;
        match state.contacts.apply(tenant, &Change { put: vec![(Some(old), c.clone())], ..Default::default() }).await? {
            Applied::Done => {
                emit(state, event(EventKind::ContactUpdated, tenant, &c)).await;
                if renamed {
                    rename_participants(state, tenant, &c).await?;
                }
                return Ok(c);
            }
            Applied::Taken { address, owner } => return Err(taken(&address, owner)),
            Applied::Stale => continue,
        }
    }
    Err(Error::unavailable("the contact kept changing; retry"))
}

/// Gives the contact's participants its new name as their display name, so conversation
/// lists find the person by the name the team gave them (`q=`), and chat views show it.
async fn rename_participants(state: &AppState, tenant: Uuid, c: &Contact) -> Result<()> {
    let mut before = None;
    loop {
        let page = state.contacts.conversations(tenant, c.id, before, 100).await?;
        for conversation in &page {
            for mut p in state.store.list_participants(*conversation).await? {
                if p.contact_id == Some(c.id) && p.address.name != c.name {
                    p.address.name.clone_from(&c.name);
                    state.channel_store.update_participant(&p).await?;
                    let e = crate::wire::Event::new(EventKind::ParticipantUpdated, tenant, Some(*conversation), &p);
                    emit(state, e).await;
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == 100 => before = Some(*last),
            _ => return Ok(()),
        }
    }
}

/// Removes a contact (its addresses become free); its participants keep their history.
pub async fn delete(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Contact> {
    for _ in 0..ATTEMPTS {
        let old = get(state, tenant, id).await?;
        let ch = Change { remove: vec![(old.clone(), Tomb::Deleted)], ..Default::default() };
        if state.contacts.apply(tenant, &ch).await? == Applied::Done {
            emit(state, event(EventKind::ContactDeleted, tenant, &old)).await;
            return Ok(old);
        }
    }
    Err(Error::unavailable("the contact kept changing; retry"))
}

/// The other phone-numbered address of the same number (`tel` ↔ `whatsapp`): one person.
fn sibling(a: &ContactAddress) -> Option<ContactAddress> {
    let kind = match a.kind {
        AddressType::Tel => AddressType::Whatsapp,
        AddressType::Whatsapp => AddressType::Tel,
        _ => return None,
    };
    a.target.starts_with('+').then(|| ContactAddress { kind, target: a.target.clone() })
}

/// The contact holding `address`, or the same phone number on the other phone channel;
/// reads only (the inbound door asks before a message passed the intercept webhooks).
pub async fn lookup(state: &AppState, tenant: Uuid, address: &Address) -> Result<Option<Uuid>> {
    let a = ContactAddress { kind: address.kind, target: address.target.clone() };
    if let Some(id) = state.contacts.by_address(tenant, &a.key()).await? {
        return Ok(Some(id));
    }
    match sibling(&a) {
        Some(s) => state.contacts.by_address(tenant, &s.key()).await,
        None => Ok(None),
    }
}

/// The contact of a participant at `address`: the one holding it, else the one holding the
/// same phone number on the other phone channel (the address joins it), else a new contact
/// named after the address. `None` for agents. Race-free: a loser of a race on a new address
/// takes the winner's contact.
pub async fn for_address(state: &AppState, tenant: Uuid, address: &Address) -> Result<Option<Uuid>> {
    if address.kind == AddressType::Agent {
        return Ok(None);
    }
    let a = ContactAddress { kind: address.kind, target: address.target.clone() };
    let (key, kin_key) = (a.key(), sibling(&a).map(|s| s.key()));
    for _ in 0..ATTEMPTS {
        // The address and its sibling are looked up together: one round of I/O.
        let kin = async {
            match &kin_key {
                Some(k) => state.contacts.by_address(tenant, k).await,
                None => Ok(None),
            }
        };
        let (own, kin) = tokio::try_join!(state.contacts.by_address(tenant, &key), kin)?;
        if let Some(id) = own {
            return Ok(Some(id));
        }
        let (change, c) = match kin {
            Some(id) => {
                let Some(old) = state.contacts.get(tenant, id).await? else { continue };
                let mut c = old.clone();
                c.addresses.push(a.clone());
                c.tm_update = now();
                (Change { put: vec![(Some(old), c.clone())], ..Default::default() }, c)
            }
            None => {
                let t = now();
                let name = if address.name.is_empty() { address.target.clone() } else { address.name.clone() };
                let c = Contact {
                    id: Uuid::now_v7(),
                    tenant_id: tenant,
                    name,
                    email: (a.kind == AddressType::Email).then(|| a.target.clone()),
                    metadata: serde_json::json!({}),
                    addresses: vec![a.clone()],
                    tm_create: t,
                    tm_update: t,
                };
                (Change { put: vec![(None, c.clone())], ..Default::default() }, c)
            }
        };
        match state.contacts.apply(tenant, &change).await? {
            Applied::Done => {
                let kind = if kin.is_some() { EventKind::ContactUpdated } else { EventKind::ContactCreated };
                emit(state, event(kind, tenant, &c)).await;
                return Ok(Some(c.id));
            }
            // Someone claimed the address meanwhile: the next turn finds its owner.
            Applied::Taken { .. } | Applied::Stale => continue,
        }
    }
    Err(Error::unavailable("could not settle the contact of this address; retry"))
}

/// Gives contact `id` the address `a` too, if no contact holds it yet (a participant's new
/// linked endpoint). An address another contact holds stays theirs.
pub async fn claim(state: &AppState, tenant: Uuid, id: Uuid, a: &Address) -> Result<()> {
    if a.kind == AddressType::Agent {
        return Ok(());
    }
    let a = ContactAddress { kind: a.kind, target: a.target.clone() };
    for _ in 0..ATTEMPTS {
        let Some(old) = state.contacts.get(tenant, id).await? else { return Ok(()) };
        if old.has_address(&a) {
            return Ok(());
        }
        let mut c = old.clone();
        c.addresses.push(a.clone());
        c.tm_update = now();
        match state.contacts.apply(tenant, &Change { put: vec![(Some(old), c.clone())], ..Default::default() }).await? {
            Applied::Done => {
                emit(state, event(EventKind::ContactUpdated, tenant, &c)).await;
                return Ok(());
            }
            Applied::Taken { .. } => return Ok(()),
            Applied::Stale => continue,
        }
    }
    Ok(())
}

/// The conversations of contact `id` that also match `filter`, newest first, below `before`
/// (the `contact_id=` filter of a conversation list). An unknown contact has none.
pub async fn find(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    filter: &crate::store::ConversationFilter,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<Conversation>> {
    let mut out = Vec::with_capacity(limit);
    let mut cursor = before;
    loop {
        let page = conversations(state, tenant, id, cursor, 100).await?;
        for c in &page {
            let parts = if filter.owner_only() { Vec::new() } else { state.store.list_participants(c.id).await? };
            if filter.matches(c, &parts) {
                out.push(c.clone());
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == 100 => cursor = Some(last.id),
            _ => return Ok(out),
        }
    }
}

/// The conversations contact `id` took part in, newest first, below `before` (ids of rooms
/// since deleted are dropped from its list as they are met).
pub async fn conversations(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<Conversation>> {
    let mut out = Vec::with_capacity(limit);
    let mut cursor = before;
    while out.len() < limit {
        let want = limit - out.len();
        let ids = state.contacts.conversations(tenant, id, cursor, want).await?;
        for c in &ids {
            match state.store.get_conversation(tenant, *c).await? {
                Some(conv) => out.push(conv),
                None => state.contacts.unlink_conversation(tenant, id, *c).await?,
            }
        }
        if ids.len() < want {
            break;
        }
        cursor = ids.last().copied();
    }
    Ok(out)
}
