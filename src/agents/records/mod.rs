//! Small keyed records of the agent side: agent accounts and their indexes, invites, sign-in
//! sessions, canned responses and per-agent read markers.
//!
//! One seam with the house's two backends: [`memory`] (maps in the process) and [`redis`] (one
//! HASH per namespace, every operation on one key, so it works on a cluster too). A namespace
//! is a small map of string keys to string values (JSON documents or ids); the modules above
//! (`accounts`, `sessions`, `canned`, `reads`) choose the namespaces and keep their documents'
//! shape. What needs atomicity across keys is built from the single-key primitives here:
//! uniqueness by claiming an index entry first (`insert`, released again if a later claim
//! fails), one-time tokens by `remove` (whoever removes it owns it), rotation by `swap`
//! (compare and set), read markers by `raise` (keep the larger number). A namespace may be
//! given a deadline (`expire_at`): at it the whole namespace goes (a Redis key TTL; swept on
//! access in memory), so short-lived records such as refresh tokens do not pile up.
//!
//! It does not know what the documents mean, nor who may read them: that is the callers' job.

pub mod memory;
pub mod redis;

use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// See the module docs.
#[async_trait]
pub trait Records: Send + Sync + 'static {
    /// The value under `key`.
    async fn get(&self, ns: &str, key: &str) -> Result<Option<String>>;
    /// The values under `keys`, in order.
    async fn get_many(&self, ns: &str, keys: &[String]) -> Result<Vec<Option<String>>>;
    /// Every entry of the namespace (any order).
    async fn all(&self, ns: &str) -> Result<Vec<(String, String)>>;
    /// Writes `key` whatever was there.
    async fn put(&self, ns: &str, key: &str, value: &str) -> Result<()>;
    /// Writes `key` only if it is absent; whether it did.
    async fn insert(&self, ns: &str, key: &str, value: &str) -> Result<bool>;
    /// Replaces `key`'s value only if it is still `old`; whether it did.
    async fn swap(&self, ns: &str, key: &str, old: &str, new: &str) -> Result<bool>;
    /// Removes `key`, answering what it held (only one caller ever gets it).
    async fn remove(&self, ns: &str, key: &str) -> Result<Option<String>>;
    /// Removes `key` only if it still holds `value`; whether it did.
    async fn remove_if(&self, ns: &str, key: &str, value: &str) -> Result<bool>;
    /// Sets the number under `key` to the larger of it and `n`, answering the result.
    async fn raise(&self, ns: &str, key: &str, n: u64) -> Result<u64>;
    /// Removes the whole namespace.
    async fn clear(&self, ns: &str) -> Result<()>;
    /// Makes the whole namespace go at `at` (replacing an earlier deadline). A namespace that
    /// holds nothing is left alone; later writes keep the deadline, `clear` drops it.
    async fn expire_at(&self, ns: &str, at: DateTime<Utc>) -> Result<()>;
    /// `put`, then `expire_at(ns, at)`, in one step: the namespace never holds the value
    /// without a deadline.
    async fn put_until(&self, ns: &str, key: &str, value: &str, at: DateTime<Utc>) -> Result<()>;
}
