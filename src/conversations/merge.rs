//! Merging two contacts into one: the survivor takes the other's addresses, conversations and
//! participants; the other is gone, leaving a tombstone that names the survivor.
//!
//! The store half (addresses, search terms, the conversation lists, the tombstone) is one
//! atomic `Change` guarded by both contacts as read, so two merges racing — even of the same
//! pair in opposite directions — leave exactly one survivor. The participant half (their
//! `contact_id`) follows afterwards and is idempotent: a merge asked again, or interrupted and
//! retried, repairs whatever did not get re-pointed. Who may merge and HTTP are not here.

use super::contacts::{ATTEMPTS, current, event};
use crate::app::AppState;
use crate::contacts::{Applied, Change, Tomb};
use crate::error::{Error, Result};
use crate::events::emit;
use crate::model::{Contact, now};
use crate::wire::EventKind;
use uuid::Uuid;

/// What a merge answers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Merged {
    /// The surviving contact as it now is.
    pub contact: Contact,
    /// The contact that was merged into it.
    pub merged_id: Uuid,
}

/// Merges contact `from` into `into` (see the module docs). Idempotent: merging again a pair
/// already merged (either way round) answers the survivor.
pub async fn merge(state: &AppState, tenant: Uuid, into: Uuid, from: Uuid) -> Result<Merged> {
    if into == from {
        return Err(Error::invalid("invalid_merge", "a contact cannot be merged into itself"));
    }
    for _ in 0..ATTEMPTS {
        let survivor = current(state, tenant, into).await?.ok_or(Error::NotFound("contact"))?;
        let Some(other) = current(state, tenant, from).await? else {
            return Err(Error::invalid("invalid_merge", format!("contact_id {from} names no contact")));
        };
        if other.id == survivor.id {
            // Already one contact (this merge, or a racing one, got there first).
            repoint(state, tenant, &survivor, from).await?;
            return Ok(Merged { contact: survivor, merged_id: from });
        }
        let mut c = survivor.clone();
        for a in &other.addresses {
            if !c.has_address(a) {
                c.addresses.push(a.clone());
            }
        }
        if c.name.trim().is_empty() {
            c.name.clone_from(&other.name);
        }
        if c.email.is_none() {
            c.email.clone_from(&other.email);
        }
        if let (Some(mine), Some(theirs)) = (c.metadata.as_object_mut(), other.metadata.as_object()) {
            for (k, v) in theirs {
                mine.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        c.tm_update = now();
        let change = Change {
            put: vec![(Some(survivor), c.clone())],
            remove: vec![(other.clone(), Tomb::Merged(c.id))],
            move_conversations: Some((other.id, c.id)),
        };
        match state.contacts.apply(tenant, &change).await? {
            Applied::Done => {
                repoint(state, tenant, &c, other.id).await?;
                let merged = Merged { contact: c, merged_id: other.id };
                emit(state, event(EventKind::ContactMerged, tenant, &merged)).await;
                return Ok(merged);
            }
            Applied::Stale => continue,
            Applied::Taken { address, owner } => {
                return Err(Error::Conflict(format!("{address} belongs to a third contact {owner}")));
            }
        }
    }
    Err(Error::unavailable("the contacts kept changing; retry the merge"))
}

/// Points every participant of `gone` in the survivor's conversations at the survivor.
async fn repoint(state: &AppState, tenant: Uuid, survivor: &Contact, gone: Uuid) -> Result<()> {
    let mut before = None;
    loop {
        let page = state.contacts.conversations(tenant, survivor.id, before, 100).await?;
        for conversation in &page {
            for mut p in state.store.list_participants(*conversation).await? {
                if p.contact_id == Some(gone) {
                    p.contact_id = Some(survivor.id);
                    state.channel_store.update_participant(&p).await?;
                    emit(state, super::event(EventKind::ParticipantUpdated, tenant, *conversation, &p)).await;
                }
            }
        }
        if page.len() < 100 {
            return Ok(());
        }
        before = page.last().copied();
    }
}
