//! Agent availability and the round-robin pick.
//!
//! An agent is *available* while it holds at least one open WebSocket (with an agent token).
//! Each node counts its own agent connections here; what the other nodes know is the
//! [`Roster`]'s job, with the house's two backends: [`memory`] (this node's count is the whole
//! truth) and [`redis`] (every node keeps an expiring entry per connected agent in a shared
//! ZSET, pushed forward by a heartbeat, so all nodes see the same list and a dead node's agents
//! drop out when their entries expire).
//!
//! The pick is "the next available agent after the one picked last, in identity order", which
//! stays fair when agents come and go. On Redis it is one script over the ZSET and the
//! tenant's last pick, so two nodes opening conversations at the same moment never pick the
//! same slot.

pub mod memory;
pub mod redis;

use crate::app::AppState;
use crate::error::Result;
use async_trait::async_trait;
use dashmap::DashMap;
use std::sync::Arc;
use uuid::Uuid;

/// (tenant, identity) → this node's open agent connections.
pub type Local = DashMap<(Uuid, String), usize>;

/// Who is available beyond this node: the seam between the two backends.
#[async_trait]
pub trait Roster: Send + Sync + 'static {
    /// `identity` opened its first connection on this node.
    async fn joined(&self, state: &AppState, tenant: Uuid, identity: &str);
    /// `identity` closed its last connection on this node.
    async fn left(&self, tenant: Uuid, identity: &str);
    /// Identities of the tenant's available agents (any order, duplicates allowed).
    async fn available(&self, tenant: Uuid, local: &Local) -> Result<Vec<String>>;
    /// The next available agent after the tenant's last pick, recording it as the last pick.
    async fn pick(&self, tenant: Uuid, local: &Local) -> Result<Option<String>>;
}

/// See the module docs. One per node, in `AppState`.
pub struct Presence {
    local: Local,
    roster: Arc<dyn Roster>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").field("local", &self.local.len()).finish_non_exhaustive()
    }
}

impl Presence {
    pub fn new(roster: Arc<dyn Roster>) -> Presence {
        Presence { local: DashMap::new(), roster }
    }

    /// An agent connection opened on this node.
    pub async fn connected(&self, state: &AppState, tenant: Uuid, identity: &str) {
        let first = {
            let mut n = self.local.entry((tenant, identity.to_string())).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            self.roster.joined(state, tenant, identity).await;
        }
    }

    /// An agent connection on this node closed.
    pub async fn disconnected(&self, tenant: Uuid, identity: &str) {
        let key = (tenant, identity.to_string());
        if let Some(mut n) = self.local.get_mut(&key) {
            *n = n.saturating_sub(1);
        }
        if self.local.remove_if(&key, |_, n| *n == 0).is_some() {
            self.roster.left(tenant, identity).await;
        }
    }

    /// Identities of the tenant's available agents, sorted.
    pub async fn available(&self, tenant: Uuid) -> Result<Vec<String>> {
        let mut ids = self.roster.available(tenant, &self.local).await?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The next available agent for `tenant` (round robin), `None` when nobody is available.
    pub async fn pick(&self, tenant: Uuid) -> Result<Option<String>> {
        self.roster.pick(tenant, &self.local).await
    }

    /// This node's connected agents, as (tenant, identity).
    pub fn local_agents(&self) -> Vec<(Uuid, String)> {
        self.local.iter().map(|e| e.key().clone()).collect()
    }
}

/// The next identity after `last` in sorted `ids`, wrapping to the first.
pub(crate) fn next_after<'a>(ids: &'a [String], last: &str) -> Option<&'a String> {
    ids.iter().find(|id| id.as_str() > last).or(ids.first())
}
