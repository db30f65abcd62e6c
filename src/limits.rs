//! Limits an operator sets in config and this node enforces: rate limits (governor's GCRA),
//! WebSocket connection counts, and the provider webhook body size.
//!
//! Rate limiters refuse with [`Error::RateLimited`], which answers 429 with `Retry-After` over
//! HTTP and an `error` frame (`rate_limited`) over WebSocket. Keyed limiters only ever see keys
//! that already authenticated (API-key hashes, configured provider accounts), so their maps
//! stay as small as the configuration; `retain_recent` in [`Limits::upkeep`] trims idle keys.
//! Connection counts are held by RAII [`ConnPermit`]s, so a session that ends for any reason
//! (including a panic or an upgrade the client never completed) gives its slot back.

use crate::config::{Config, LimitsConfig};
use crate::error::{Error, Result};
use axum::extract::DefaultBodyLimit;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

/// `rate` per second with bursts of `burst`; `None` when `rate` is 0 (unlimited).
fn quota(rate: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    Some(Quota::per_second(rate).allow_burst(NonZeroU32::new(burst).unwrap_or(rate)))
}

/// Whole seconds a client should wait, rounded up (a `Retry-After` of 0 invites a hot loop).
fn retry_after(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// A rate limit per key (API key hash, provider account id…). Cheap to share behind `Arc`.
pub struct KeyedLimiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for KeyedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter").field("enabled", &self.limiter.is_some()).finish()
    }
}

impl KeyedLimiter {
    /// `rate` requests per second per key, bursts up to `burst`; `rate = 0` never limits.
    pub fn new(rate: u32, burst: u32) -> Self {
        KeyedLimiter { limiter: quota(rate, burst).map(governor::RateLimiter::keyed), clock: DefaultClock::default() }
    }

    /// `per_min` requests per minute per key, all of them usable at once; 0 never limits.
    pub fn per_minute(per_min: u32) -> Self {
        let quota = NonZeroU32::new(per_min).map(Quota::per_minute);
        KeyedLimiter { limiter: quota.map(governor::RateLimiter::keyed), clock: DefaultClock::default() }
    }

    /// Takes one cell for `key`, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Error> {
        let Some(l) = &self.limiter else { return Ok(()) };
        l.check_key(&key.to_string()).map_err(|not_until| Error::RateLimited {
            retry_after_secs: retry_after(not_until.wait_time_from(self.clock.now())),
        })
    }

    /// Forgets keys whose bucket is full again (they would be recreated identically).
    pub fn retain_recent(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// One WebSocket connection's frame rate limit.
pub struct FrameLimiter {
    limiter: Option<DefaultDirectRateLimiter>,
    clock: DefaultClock,
}

impl std::fmt::Debug for FrameLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameLimiter").field("enabled", &self.limiter.is_some()).finish()
    }
}

impl FrameLimiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        FrameLimiter { limiter: quota(rate, burst).map(governor::RateLimiter::direct), clock: DefaultClock::default() }
    }

    /// `Ok` if the frame may be handled, else how long until the next one may.
    pub fn check(&self) -> Result<(), std::time::Duration> {
        let Some(l) = &self.limiter else { return Ok(()) };
        l.check().map_err(|n| n.wait_time_from(self.clock.now()))
    }
}

/// The body limit for provider webhook routes (`limits.max_webhook_body_bytes`); provider
/// hooks add it with `.layer(limits::webhook_body_limit(&config))`. Over it: 413.
pub fn webhook_body_limit(config: &Config) -> DefaultBodyLimit {
    DefaultBodyLimit::max(config.limits.max_webhook_body_bytes)
}

/// Refuses a webhook body that is already buffered and larger than the limit.
pub fn check_webhook_body(limits: &LimitsConfig, len: usize) -> Result<(), Error> {
    if len > limits.max_webhook_body_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "webhook body is larger than {} bytes (limits.max_webhook_body_bytes)",
            limits.max_webhook_body_bytes
        )));
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Counts {
    open: AtomicUsize,
    by_identity: DashMap<(Uuid, String), usize>,
}

/// This node's limiters and connection counts.
#[derive(Debug)]
pub struct Limits {
    /// REST requests per API key (keyed by the key's hash, never the key).
    pub api: KeyedLimiter,
    /// Inbound provider webhooks per provider account; for the channel hooks.
    pub provider: KeyedLimiter,
    /// Website widget requests per client address (`api::widget`): the one keyed limiter whose
    /// keys are not authenticated, so `upkeep` trims it like the others.
    pub widget: KeyedLimiter,
    /// Sign-in attempts per email (`limits.login_per_email_per_min`; keys are SHA-256 hashes of
    /// the lowercased email, never the address), trimmed by `upkeep`.
    pub login_email: KeyedLimiter,
    /// Sign-in and invite-accept attempts per client address (`limits.login_per_address_per_min`).
    pub login_address: KeyedLimiter,
    max_connections: usize,
    max_per_identity: usize,
    counts: Arc<Counts>,
}

impl Limits {
    pub fn new(config: &Config) -> Limits {
        let (l, ws) = (&config.limits, &config.ws);
        Limits {
            api: KeyedLimiter::new(l.api_rate_per_sec, l.api_burst),
            provider: KeyedLimiter::new(l.provider_rate_per_sec, l.provider_burst),
            widget: KeyedLimiter::new(l.widget_rate_per_sec, l.widget_burst),
            login_email: KeyedLimiter::per_minute(l.login_per_email_per_min),
            login_address: KeyedLimiter::per_minute(l.login_per_address_per_min),
            max_connections: ws.max_connections,
            max_per_identity: ws.max_connections_per_identity,
            counts: Arc::default(),
        }
    }

    /// WebSocket connections open (or being upgraded) on this node.
    pub fn open_connections(&self) -> usize {
        self.counts.open.load(Ordering::Relaxed)
    }

    /// A slot for one more connection on this node: 503 `unavailable` when full.
    pub fn connection(&self) -> Result<ConnPermit, Error> {
        let max = self.max_connections;
        let taken = self.counts.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        if taken.is_err() {
            return Err(Error::unavailable(format!(
                "this node is at its WebSocket connection limit ({max}, ws.max_connections); retry or use another node"
            )));
        }
        Ok(ConnPermit { counts: self.counts.clone(), identity: None })
    }

    /// Adds the holder's identity to `permit`: 429 `too_many_connections` when that identity
    /// already holds `ws.max_connections_per_identity` connections on this node.
    pub fn identity(&self, permit: &mut ConnPermit, tenant: Uuid, identity: &str) -> Result<(), Error> {
        let key = (tenant, identity.to_string());
        let mut n = self.counts.by_identity.entry(key.clone()).or_insert(0);
        if *n >= self.max_per_identity {
            return Err(Error::TooMany {
                code: "too_many_connections",
                message: format!(
                    "this identity already holds {} connections (ws.max_connections_per_identity)",
                    self.max_per_identity
                ),
            });
        }
        *n += 1;
        drop(n);
        permit.identity = Some(key);
        Ok(())
    }

    /// Periodic housekeeping: trims idle limiter keys.
    pub fn upkeep(&self) {
        self.api.retain_recent();
        self.provider.retain_recent();
        self.widget.retain_recent();
        self.login_email.retain_recent();
        self.login_address.retain_recent();
    }
}

/// One connection's slot in the node and identity counts; released on drop.
#[derive(Debug)]
pub struct ConnPermit {
    counts: Arc<Counts>,
    identity: Option<(Uuid, String)>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.counts.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(key) = self.identity.take() {
            self.counts.by_identity.remove_if_mut(&key, |_, n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
        }
    }
}

/// A name-like field (conversation name, owner, webhook description) within
/// `limits.max_name_bytes`, else 422 `too_long`.
pub fn check_name(limits: &LimitsConfig, field: &'static str, value: &str) -> Result<()> {
    if value.len() > limits.max_name_bytes {
        return Err(Error::invalid("too_long", format!("{field} is longer than {} bytes", limits.max_name_bytes)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max: usize, per_identity: usize) -> Config {
        let mut c = Config::defaults();
        c.ws.max_connections = max;
        c.ws.max_connections_per_identity = per_identity;
        c
    }

    #[test]
    fn connection_slots_come_back_on_drop() {
        let l = Limits::new(&config(2, 1));
        let tenant = Uuid::nil();
        let mut a = l.connection().unwrap();
        l.identity(&mut a, tenant, "alice").unwrap();
        let mut b = l.connection().unwrap();
        assert_eq!(l.identity(&mut b, tenant, "alice").unwrap_err().code(), "too_many_connections");
        assert_eq!(l.connection().unwrap_err().code(), "unavailable");
        drop(a);
        l.identity(&mut b, tenant, "alice").unwrap();
        drop(b);
        assert_eq!(l.open_connections(), 0);
        assert!(l.counts.by_identity.is_empty());
    }

    #[test]
    fn keyed_limiter_trips_per_key_with_retry_after() {
        let l = KeyedLimiter::new(1, 2);
        l.check("k1").unwrap();
        l.check("k1").unwrap();
        match l.check("k1") {
            Err(Error::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        l.check("k2").unwrap();
        KeyedLimiter::new(0, 0).check("any").unwrap();
    }

    #[test]
    fn webhook_body_limit_is_413() {
        let mut c = Config::defaults();
        c.limits.max_webhook_body_bytes = 10;
        check_webhook_body(&c.limits, 10).unwrap();
        let e = check_webhook_body(&c.limits, 11).unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (413, "payload_too_large"));
    }
}
