//! The single-node roster: this node's connection count is the whole truth, and the last
//! pick per tenant lives in this process.

use super::{Local, Roster, next_after};
use crate::app::AppState;
use crate::error::Result;
use async_trait::async_trait;
use dashmap::DashMap;
use uuid::Uuid;

#[derive(Debug, Default)]
pub struct MemoryRoster {
    /// The identity picked last, per tenant.
    last_pick: DashMap<Uuid, String>,
}

#[async_trait]
impl Roster for MemoryRoster {
    async fn joined(&self, _state: &AppState, _tenant: Uuid, _identity: &str) {}

    async fn left(&self, _tenant: Uuid, _identity: &str) {}

    async fn available(&self, tenant: Uuid, local: &Local) -> Result<Vec<String>> {
        Ok(local.iter().filter(|e| e.key().0 == tenant).map(|e| e.key().1.clone()).collect())
    }

    async fn pick(&self, tenant: Uuid, local: &Local) -> Result<Option<String>> {
        let mut ids = self.available(tenant, local).await?;
        ids.sort();
        ids.dedup();
        let mut last = self.last_pick.entry(tenant).or_default();
        let pick = next_after(&ids, &last).cloned();
        if let Some(p) = &pick {
            last.clone_from(p);
        }
        Ok(pick)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Presence;
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn round_robin_follows_identity_order_and_wraps() {
        let p = Presence::new(Arc::new(MemoryRoster::default()));
        let t = Uuid::now_v7();
        for id in ["b", "a", "c"] {
            *p.local.entry((t, id.to_string())).or_insert(0) += 1;
        }
        let mut picks = Vec::new();
        for _ in 0..4 {
            picks.push(p.pick(t).await.unwrap().unwrap());
        }
        assert_eq!(picks, ["a", "b", "c", "a"]);
        p.disconnected(t, "b").await;
        assert_eq!(p.pick(t).await.unwrap().as_deref(), Some("c"));
        assert!(p.pick(Uuid::now_v7()).await.unwrap().is_none());
    }
}
