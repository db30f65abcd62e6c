//! Deadlines in this process: a map worked by this node's timer task. A restart loses them,
//! like everything else the memory backend holds.

use super::{Deadlines, Due, member, parse_member};
use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

/// Deadlines ordered by time (ms, member), and each member's current one.
type Map = (BTreeSet<(i64, String)>, HashMap<String, i64>);

/// See the module docs.
#[derive(Debug, Default)]
pub struct MemoryDeadlines {
    inner: Mutex<Map>,
}

impl MemoryDeadlines {
    fn set(&self, m: String, at: i64) {
        let Ok(mut g) = self.inner.lock() else { return };
        let (order, by) = &mut *g;
        if let Some(old) = by.insert(m.clone(), at) {
            order.remove(&(old, m.clone()));
        }
        order.insert((at, m));
    }
}

#[async_trait]
impl Deadlines for MemoryDeadlines {
    async fn schedule(&self, tenant: Uuid, conversation: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.set(member(tenant, conversation), at.timestamp_millis());
        Ok(())
    }

    async fn claim(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: usize) -> Result<Vec<Due>> {
        let due: Vec<String> = match self.inner.lock() {
            Ok(g) => {
                g.0.iter()
                    .take_while(|(at, _)| *at <= now.timestamp_millis())
                    .take(limit)
                    .map(|x| x.1.clone())
                    .collect()
            }
            Err(_) => return Ok(Vec::new()),
        };
        for m in &due {
            self.set(m.clone(), lease_until.timestamp_millis());
        }
        Ok(due.iter().filter_map(|m| parse_member(m)).collect())
    }

    async fn release(&self, due: Due, lease_until: DateTime<Utc>) -> Result<()> {
        let m = member(due.tenant, due.conversation);
        let Ok(mut g) = self.inner.lock() else { return Ok(()) };
        let (order, by) = &mut *g;
        if by.get(&m) == Some(&lease_until.timestamp_millis()) {
            by.remove(&m);
            order.remove(&(lease_until.timestamp_millis(), m));
        }
        Ok(())
    }
}
