//! A short-lived, node-local copy of channel accounts for the inbound webhook path.
//!
//! Every provider callback starts by loading its account (provider, credentials for the
//! signature check). On the Redis backend that is one round trip before anything else can
//! happen, for data that changes a few times a year. Accounts read here are kept for
//! `TTL`; a change made through this node's API is seen at once (`forget`), one made through
//! another node within `TTL`. Meanwhile a callback signed with a just-rotated secret is
//! refused and retried by the provider, as it would be during any rotation. Unknown ids are
//! not cached, so a new account works on its first callback.

use crate::error::Result;
use crate::model::Account;
use crate::store::ChannelStore;
use dashmap::DashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a cached account is trusted.
const TTL: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct AccountCache {
    entries: DashMap<Uuid, (Instant, Account)>,
}

impl AccountCache {
    /// The account, from the cache when read within `TTL`, else from the store.
    pub async fn get(&self, store: &dyn ChannelStore, id: Uuid) -> Result<Option<Account>> {
        if let Some(e) = self.entries.get(&id)
            && e.0.elapsed() < TTL
        {
            return Ok(Some(e.1.clone()));
        }
        let found = store.get_account(id).await?;
        match &found {
            Some(a) => {
                self.entries.insert(id, (Instant::now(), a.clone()));
            }
            None => {
                self.entries.remove(&id);
            }
        }
        Ok(found)
    }

    /// Drops the cached copy after a change through this node.
    pub fn forget(&self, id: Uuid) {
        self.entries.remove(&id);
    }
}
