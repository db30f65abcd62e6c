//! Customer webhooks: subscriptions, signed at-least-once event delivery, and interception of
//! messages before they are stored.
//!
//! Owns the webhook and delivery records (behind `WebhookStore`: memory, or Redis with a
//! Redis Stream + consumer group as the durable outbox), the per-node index of subscriptions
//! (tenant → webhooks, refreshed when the store's version changes, so the post path checks for
//! intercept webhooks with one map lookup), the dispatch of events into the durable outbox
//! (`record`, on the write path; a message's event is written by the store's append itself)
//! and from there into one delivery per matching `notify` webhook (`dispatch`), the outbox
//! workers (per webhook + conversation FIFO lanes, per-endpoint concurrency limit, exponential
//! backoff with jitter up to a horizon, then `dead`), the signature scheme, the SSRF guard,
//! and `intercept` for `message.creating`. It does not own the events themselves (the code
//! that changes things emits them), the REST shapes (`api::webhooks`) or the post path
//! (`conversations::post` calls `intercept`).

mod dispatch;
pub mod guard;
mod intercept;
mod manage;
pub mod model;
mod outbox;
mod ranges;
pub mod redis_store;
pub mod sign;
pub mod store;

pub use dispatch::{record, wanted};
pub use intercept::{Verdict, intercept};
pub use manage::{Changes, create, delete, deliveries, get, list, redeliver, rotate_secret, update};
pub use model::open_outbox_event;
pub use model::{Attempt, Delivery, DeliveryStatus, Mode, OnFailure, OutboxEntry, Secret, Webhook};
pub use store::{MemoryWebhookStore, WebhookStore};

use crate::app::AppState;
use crate::config::Config;
use crate::error::Result;
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

/// One tenant's webhooks as this node currently knows them.
#[derive(Debug)]
pub struct TenantHooks {
    /// Load generation: a slower, older reload never replaces a newer one.
    generation: u64,
    pub hooks: Vec<Webhook>,
    /// Any `intercept` webhook among them (the post path's one check).
    pub intercept: bool,
}

/// The webhook engine's state on this node (a field of `AppState`).
pub struct Webhooks {
    pub store: Arc<dyn WebhookStore>,
    index: DashMap<Uuid, Arc<TenantHooks>>,
    generation: AtomicU64,
    /// The store version the index was last fully loaded at.
    seen_version: AtomicU64,
    /// Client for webhook targets: SSRF-guarded DNS, no redirects.
    http: reqwest::Client,
    /// This process's name as an outbox consumer (node id + random suffix).
    consumer: String,
    /// Wakes the outbox consumer when this node queued something.
    wake: Notify,
    /// Per-webhook concurrency limits.
    limits: DashMap<Uuid, Arc<Semaphore>>,
    allow_private: bool,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").field("consumer", &self.consumer).finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The engine on `store` (memory or Redis, chosen by the app).
    pub fn new(config: &Config, node_id: &str, store: Arc<dyn WebhookStore>) -> anyhow::Result<Webhooks> {
        let cfg = &config.webhooks;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.request_timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.request_timeout_ms.min(5000)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(guard::GuardedResolver { allow_private: cfg.allow_private_targets }))
            .user_agent(concat!("switchboard-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Webhooks {
            store,
            index: DashMap::new(),
            generation: AtomicU64::new(0),
            seen_version: AtomicU64::new(u64::MAX),
            http,
            consumer: crate::auth::random_key(&format!("{node_id}-")),
            wake: Notify::new(),
            limits: DashMap::new(),
            allow_private: cfg.allow_private_targets,
        })
    }

    /// The tenant's webhooks, if it has any intercept webhook. A map lookup, nothing else.
    pub fn intercepts(&self, tenant: Uuid) -> Option<Arc<TenantHooks>> {
        self.index.get(&tenant).filter(|h| h.intercept).map(|h| h.clone())
    }

    /// The tenant's webhooks as last loaded.
    pub fn hooks(&self, tenant: Uuid) -> Option<Arc<TenantHooks>> {
        self.index.get(&tenant).map(|h| h.clone())
    }

    /// Wakes this node's outbox consumer: something was just queued (by the store, too).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn find(&self, tenant: Uuid, id: Uuid) -> Option<Webhook> {
        self.index.get(&tenant)?.hooks.iter().find(|w| w.id == id).cloned()
    }

    fn limit(&self, webhook: Uuid, permits: usize) -> Arc<Semaphore> {
        self.limits.entry(webhook).or_insert_with(|| Arc::new(Semaphore::new(permits))).clone()
    }

    fn install(&self, tenant: Uuid, hooks: Vec<Webhook>, generation: u64) {
        let intercept = hooks.iter().any(|w| w.mode == Mode::Intercept);
        let fresh = Arc::new(TenantHooks { generation, hooks, intercept });
        self.index
            .entry(tenant)
            .and_modify(|cur| {
                if cur.generation < generation {
                    *cur = fresh.clone();
                }
            })
            .or_insert(fresh);
    }

    /// Re-reads one tenant's webhooks after this node changed them.
    pub async fn reload_tenant(&self, tenant: Uuid) -> Result<()> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let hooks = self.store.list_webhooks(Some(tenant)).await?;
        self.install(tenant, hooks, generation);
        Ok(())
    }

    /// Re-reads every webhook when the store's version moved (changes made on other nodes).
    pub async fn refresh(&self) -> Result<()> {
        let version = self.store.version().await?;
        if version == self.seen_version.load(Ordering::SeqCst) {
            return Ok(());
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut by_tenant: HashMap<Uuid, Vec<Webhook>> = HashMap::new();
        for w in self.store.list_webhooks(None).await? {
            by_tenant.entry(w.tenant_id).or_default().push(w);
        }
        let gone: Vec<Uuid> = self.index.iter().map(|e| *e.key()).filter(|t| !by_tenant.contains_key(t)).collect();
        for t in gone {
            self.install(t, Vec::new(), generation);
        }
        for (t, hooks) in by_tenant {
            self.install(t, hooks, generation);
        }
        self.seen_version.store(version, Ordering::SeqCst);
        Ok(())
    }
}

/// Loads the index and starts the index refresher and the outbox consumer.
/// Called once by `app::serve` before it accepts connections.
pub async fn start(state: &AppState) -> anyhow::Result<()> {
    state.webhooks.refresh().await?;
    state.tasks.spawn(dispatch::refresh_loop(state.clone()));
    state.tasks.spawn(outbox::run(state.clone()));
    Ok(())
}
