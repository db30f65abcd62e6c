//! [`Records`] in the process: one map per namespace behind one mutex (never held across an
//! `.await`; every operation is a few map steps). A restart loses them, like everything else
//! the memory backend holds.

use super::Records;
use crate::error::Result;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

type Spaces = HashMap<String, BTreeMap<String, String>>;

/// See the module docs.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    spaces: Mutex<Spaces>,
}

impl MemoryRecords {
    fn lock(&self) -> MutexGuard<'_, Spaces> {
        // A panic elsewhere cannot leave a map half-written: every change is one map call.
        self.spaces.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Records for MemoryRecords {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<String>> {
        Ok(self.lock().get(ns).and_then(|m| m.get(key).cloned()))
    }

    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<String>>> {
        let g = self.lock();
        let m = g.get(ns);
        Ok(keys.iter().map(|k| m.and_then(|m| m.get(k).cloned())).collect())
    }

    async fn all(&self, ns: &str) -> Result<Vec<(String, String)>> {
        let g = self.lock();
        Ok(g.get(ns).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default())
    }

    async fn put(&self, ns: &str, key: &str, value: &str) -> Result<()> {
        self.lock().entry(ns.to_string()).or_default().insert(key.to_string(), value.to_string());
        Ok(())
    }

    async fn insert(&self, ns: &str, key: &str, value: &str) -> Result<bool> {
        let mut g = self.lock();
        let m = g.entry(ns.to_string()).or_default();
        if m.contains_key(key) {
            return Ok(false);
        }
        m.insert(key.to_string(), value.to_string());
        Ok(true)
    }

    async fn swap(&self, ns: &str, key: &str, old: &str, new: &str) -> Result<bool> {
        let mut g = self.lock();
        match g.get_mut(ns).and_then(|m| m.get_mut(key)) {
            Some(v) if v == old => {
                *v = new.to_string();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove(&self, ns: &str, key: &str) -> Result<Option<String>> {
        Ok(self.lock().get_mut(ns).and_then(|m| m.remove(key)))
    }

    async fn remove_if(&self, ns: &str, key: &str, value: &str) -> Result<bool> {
        let mut g = self.lock();
        let Some(m) = g.get_mut(ns) else { return Ok(false) };
        if m.get(key).map(String::as_str) != Some(value) {
            return Ok(false);
        }
        m.remove(key);
        Ok(true)
    }

    async fn raise(&self, ns: &str, key: &str, n: u64) -> Result<u64> {
        let mut g = self.lock();
        let v = g.entry(ns.to_string()).or_default().entry(key.to_string()).or_insert_with(|| "0".into());
        let now = v.parse::<u64>().unwrap_or(0).max(n);
        *v = now.to_string();
        Ok(now)
    }

    async fn clear(&self, ns: &str) -> Result<()> {
        self.lock().remove(ns);
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
}
