//! [`Records`] in the process: one map per namespace behind one mutex (never held across an
//! `.await`; every operation is a few map steps). A restart loses them, like everything else
//! the memory backend holds. Namespace deadlines (`expire_at`) are kept in deadline order and
//! swept on access: every operation first drops the namespaces whose deadline has passed, so
//! an expired namespace is gone (not just hidden) once anything touches the records again.

use super::Records;
use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

type Spaces = HashMap<String, BTreeMap<String, String>>;

#[derive(Debug, Default)]
struct Inner {
    spaces: Spaces,
    /// `(deadline, namespace)`, soonest first; an entry whose deadline is no longer the
    /// namespace's own (moved since) is skipped when it comes up.
    deadlines: BTreeSet<(DateTime<Utc>, String)>,
    deadline_of: HashMap<String, DateTime<Utc>>,
}

impl Inner {
    /// Gives a namespace that holds something the deadline `at` (a past one removes it now).
    fn expire_at(&mut self, ns: &str, at: DateTime<Utc>) {
        if self.spaces.get(ns).is_none_or(|m| m.is_empty()) {
            return;
        }
        self.deadline_of.insert(ns.to_string(), at);
        self.deadlines.insert((at, ns.to_string()));
        self.sweep(Utc::now());
    }

    /// Drops every namespace whose deadline has passed.
    fn sweep(&mut self, now: DateTime<Utc>) {
        while let Some((at, ns)) = self.deadlines.first().cloned().filter(|(at, _)| *at <= now) {
            self.deadlines.pop_first();
            if self.deadline_of.get(&ns) == Some(&at) {
                self.deadline_of.remove(&ns);
                self.spaces.remove(&ns);
            }
        }
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    inner: Mutex<Inner>,
}

impl MemoryRecords {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave a map half-written: every change is one map call.
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.sweep(Utc::now());
        g
    }

    /// How many namespaces are held right now, after the sweep (what a test of expiry sees).
    pub fn held(&self) -> usize {
        self.lock().spaces.len()
    }
}

#[async_trait]
impl Records for MemoryRecords {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<String>> {
        Ok(self.lock().spaces.get(ns).and_then(|m| m.get(key).cloned()))
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<String>>> {
        let g = self.lock();
        let m = g.spaces.get(ns);
        Ok(keys.iter().map(|k| m.and_then(|m| m.get(k).cloned())).collect())
    }

    async fn all(&self, ns: &str) -> Result<Vec<(String, String)>> {
        let g = self.lock();
        Ok(g.spaces.get(ns).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default())
    }

    async fn put(&self, ns: &str, key: &str, value: &str) -> Result<()> {
        self.lock().spaces.entry(ns.to_string()).or_default().insert(key.to_string(), value.to_string());
        Ok(())
    }

    async fn insert(&self, ns: &str, key: &str, value: &str) -> Result<bool> {
        let mut g = self.lock();
        let m = g.spaces.entry(ns.to_string()).or_default();
        if m.contains_key(key) {
            return Ok(false);
        }
        m.insert(key.to_string(), value.to_string());
        Ok(true)
    }

    async fn swap(&self, ns: &str, key: &str, old: &str, new: &str) -> Result<bool> {
        let mut g = self.lock();
        match g.spaces.get_mut(ns).and_then(|m| m.get_mut(key)) {
            Some(v) if v == old => {
                *v = new.to_string();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove(&self, ns: &str, key: &str) -> Result<Option<String>> {
        Ok(self.lock().spaces.get_mut(ns).and_then(|m| m.remove(key)))
    }

    async fn remove_if(&self, ns: &str, key: &str, value: &str) -> Result<bool> {
        let mut g = self.lock();
        let Some(m) = g.spaces.get_mut(ns) else { return Ok(false) };
        if m.get(key).map(String::as_str) != Some(value) {
            return Ok(false);
        }
        m.remove(key);
        Ok(true)
    }

    async fn raise(&self, ns: &str, key: &str, n: u64) -> Result<u64> {
        let mut g = self.lock();
        let v = g.spaces.entry(ns.to_string()).or_default().entry(key.to_string()).or_insert_with(|| "0".into());
        let now = v.parse::<u64>().unwrap_or(0).max(n);
        *v = now.to_string();
        Ok(now)
    }

    async fn clear(&self, ns: &str) -> Result<()> {
        let mut g = self.lock();
        g.spaces.remove(ns);
        g.deadline_of.remove(ns);
        Ok(())
    }

    async fn expire_at(&self, ns: &str, at: DateTime<Utc>) -> Result<()> {
        self.lock().expire_at(ns, at);
        Ok(())
    }

    async fn put_until(&self, ns: &str, key: &str, value: &str, at: DateTime<Utc>) -> Result<()> {
        let mut g = self.lock();
        g.spaces.entry(ns.to_string()).or_default().insert(key.to_string(), value.to_string());
        g.expire_at(ns, at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn primitives_keep_their_promises() {
        let r = MemoryRecords::default();
        assert!(r.insert("a", "k", "1").await.unwrap());
        assert!(!r.insert("a", "k", "2").await.unwrap(), "insert never overwrites");
        assert!(!r.swap("a", "k", "2", "3").await.unwrap());
        assert!(r.swap("a", "k", "1", "3").await.unwrap());
        assert_eq!(r.get_many("a", &["k".into(), "x".into()]).await.unwrap(), [Some("3".into()), None]);
        assert!(!r.remove_if("a", "k", "1").await.unwrap());
        assert_eq!(r.remove("a", "k").await.unwrap().as_deref(), Some("3"));
        assert_eq!(r.remove("a", "k").await.unwrap(), None, "only one remover gets it");
        assert_eq!(r.raise("m", "c", 5).await.unwrap(), 5);
        assert_eq!(r.raise("m", "c", 3).await.unwrap(), 5, "a marker never goes back");
        r.clear("m").await.unwrap();
        assert!(r.all("m").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_namespace_goes_at_its_deadline_and_a_later_one_wins() {
        let r = MemoryRecords::default();
        r.put("short", "k", "1").await.unwrap();
        r.put("moved", "k", "1").await.unwrap();
        r.put("kept", "k", "1").await.unwrap();
        r.expire_at("nothing", Utc::now()).await.unwrap();
        assert_eq!(r.held(), 3, "an empty namespace gets no deadline");
        r.expire_at("short", Utc::now() + chrono::Duration::milliseconds(50)).await.unwrap();
        r.expire_at("moved", Utc::now() + chrono::Duration::milliseconds(50)).await.unwrap();
        r.expire_at("moved", Utc::now() + chrono::Duration::hours(1)).await.unwrap();
        assert_eq!(r.get("short", "k").await.unwrap().as_deref(), Some("1"));
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        assert_eq!(r.held(), 2, "the expired namespace is dropped, not just hidden");
        assert_eq!(r.get("short", "k").await.unwrap(), None);
        assert_eq!(r.get("moved", "k").await.unwrap().as_deref(), Some("1"), "the later deadline replaced the first");
        r.expire_at("kept", Utc::now() - chrono::Duration::seconds(1)).await.unwrap();
        assert_eq!(r.get("kept", "k").await.unwrap(), None, "a deadline in the past removes at once");
        r.put_until("both", "k", "1", Utc::now() + chrono::Duration::milliseconds(50)).await.unwrap();
        assert_eq!(r.get("both", "k").await.unwrap().as_deref(), Some("1"));
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        assert_eq!(r.get("both", "k").await.unwrap(), None, "put_until writes with its deadline");
    }
}
