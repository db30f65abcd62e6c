//! Application state and lifecycle: wiring the backend, the router, and a graceful drain.
//!
//! `AppState` is a cheap `Arc` clone handed to every handler and session. Shutdown is one
//! `CancellationToken` (sessions close with 1001 when it fires) plus a `TaskTracker` the
//! server waits on, bounded by `server.shutdown_grace_secs`.

use crate::auth::{TokenSigner, hash_api_key, random_key};
use crate::broker::{Broker, MemoryBroker};
use crate::channels::Registry;
use crate::channels::outbox::Outbox;
use crate::channels::queue::{memory::MemoryQueue, redis::RedisQueue};
use crate::config::{Backend, Config};
use crate::hub::Hub;
use crate::model::Tenant;
use crate::store::{ChannelStore, MemoryStore, Store};
use dashmap::DashMap;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by every request and connection; clone freely.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub node_id: String,
    pub store: Arc<dyn Store>,
    pub channel_store: Arc<dyn ChannelStore>,
    /// Accounts as recently read, for provider callbacks (`channels::accounts`).
    pub accounts: crate::channels::accounts::AccountCache,
    /// WhatsApp templates as recently read (`channels::templates`).
    pub templates: crate::channels::templates::TemplateCache,
    pub broker: Arc<dyn Broker>,
    /// Provider adapters by name.
    pub channels: Registry,
    /// Outbound deliveries to channel participants.
    pub outbox: Outbox,
    /// The inbound media re-hosting queue (`channels::inbound_rehost`): durable on Redis.
    pub rehost: Arc<crate::channels::inbound_rehost::RehostQueue>,
    /// Shared HTTP client for provider APIs (connection pooling, request timeout).
    pub http: reqwest::Client,
    pub hub: Hub,
    /// Room presence announcements: coalesced, rate-limited, off for big rooms.
    pub presence: crate::hub::presence::PresenceGate,
    /// Connections following their tenant's conversation list (`crate::watch`).
    pub watchers: crate::watch::Watchers,
    pub tokens: TokenSigner,
    /// API-key hash → tenant, filled on first use (keys are not revocable at run time yet).
    pub key_cache: DashMap<String, Tenant>,
    /// Fires when the node starts shutting down.
    pub shutdown: CancellationToken,
    /// Every WebSocket session and background task, awaited on shutdown.
    pub tasks: TaskTracker,
    /// The actual listen address (port 0 resolved), set by `serve`.
    pub bound: std::sync::OnceLock<String>,
    /// Events waiting for the node's one ordered publisher task (see `events::emit`).
    pub events: crate::events::EventQueue,
    /// This node's Prometheus recorder (no global recorder: see `crate::metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Rate limiters and connection counts.
    pub limits: crate::limits::Limits,
    /// Customer webhooks: subscriptions index, outbox, intercept.
    pub webhooks: crate::webhooks::Webhooks,
    /// Which agents are available (connected), for auto-assignment.
    pub agents: crate::agents::Presence,
    /// Conversation deadlines (timers, snoozes), worked by `conversations::status`.
    pub deadlines: Arc<dyn crate::timers::Deadlines>,
    /// Contacts: documents, address and search indexes (`contacts`), written through
    /// `conversations::contacts`.
    pub contacts: Arc<dyn crate::contacts::ContactStore>,
    /// Stored media: uploads and re-hosted inbound media (`crate::media`).
    pub media: crate::media::MediaStore,
    /// Agent accounts, sign-in sessions, canned responses, read markers
    /// (`crate::agents::records`).
    pub records: Arc<dyn crate::agents::records::Records>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

impl AppState {
    /// The base URL providers reach this node at: `server.public_url`, else the listen address.
    pub fn public_base(&self) -> String {
        let u = &self.config.server.public_url;
        if u.is_empty() { format!("http://{}", self.local_addr()) } else { u.trim_end_matches('/').to_string() }
    }

    /// The address the listener is bound to (known once `serve` started).
    pub fn local_addr(&self) -> String {
        self.bound.get().cloned().unwrap_or_else(|| self.config.server.listen.clone())
    }
}

/// What `build` found worth telling the operator.
#[derive(Debug, Default)]
pub struct Bootstrap {
    /// The dev tenant's API key, when no tenants were configured.
    pub dev_api_key: Option<String>,
}

impl AppState {
    /// Connects the configured backend and seeds tenants.
    pub async fn build(config: Config) -> anyhow::Result<(AppState, Bootstrap)> {
        let hub = Hub::new();
        let watchers = crate::watch::Watchers::default();
        let members = crate::store::RoomCache::new();
        let handler = crate::broker::Handler::new(hub.clone(), watchers.clone(), members.clone());
        let node_id = if config.server.node_id.is_empty() {
            format!("node-{}", std::process::id())
        } else {
            config.server.node_id.clone()
        };
        // Built first: the Redis client records its command latencies into it.
        let metrics = Arc::new(crate::metrics::Metrics::new(&node_id));
        let mut webhook_redis: Option<crate::redis::RedisClient> = None;
        let memory_hooks = Arc::new(crate::webhooks::MemoryWebhookStore::default());
        let (store, channel_store, broker): (Arc<dyn Store>, Arc<dyn ChannelStore>, Arc<dyn Broker>) =
            match config.store.backend {
                Backend::Memory => {
                    let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
                    let (bus, receivers) = crate::wire::LocalBus::new(shards);
                    let ttl = Duration::from_secs(config.store.idempotency_ttl_secs);
                    let mem = Arc::new(
                        MemoryStore::new(bus.clone(), ttl)
                            .with_webhook_outbox(memory_hooks.clone())
                            .with_room_cache(members),
                    );
                    (mem.clone(), mem, Arc::new(MemoryBroker::start(bus, receivers, handler)))
                }
                Backend::Redis => {
                    // Fails here, before serving anything, when Redis is unreachable.
                    let redis = crate::redis::RedisClient::connect(&config.redis).await?.observed(metrics.clone());
                    webhook_redis = Some(redis.clone());
                    let store =
                        Arc::new(crate::store::RedisStore::new(redis.clone(), &config).with_room_cache(members));
                    let broker = crate::broker::RedisBroker::start(redis, &config.redis, handler, store.clone());
                    (store.clone(), store, Arc::new(broker))
                }
            };
        let secret = if config.auth.token_secret.is_empty() {
            tracing::warn!("auth.token_secret is empty: using a random secret; client tokens die with this process");
            random_key("").into_bytes()
        } else {
            config.auth.token_secret.clone().into_bytes()
        };
        let mut boot = Bootstrap::default();
        if config.tenants.is_empty() {
            let key = if config.auth.dev_api_key.is_empty() {
                random_key("sk_dev_")
            } else {
                config.auth.dev_api_key.clone()
            };
            let tenant = Tenant {
                id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"switchboard:tenant:dev"),
                name: "dev".into(),
            };
            store.put_tenant(&tenant, &[hash_api_key(&key)]).await?;
            boot.dev_api_key = Some(key);
        }
        for t in &config.tenants {
            let hashes: Vec<String> = t.api_keys.iter().map(|k| hash_api_key(k)).collect();
            store.put_tenant(&Tenant { id: t.tenant_id(), name: t.name.clone() }, &hashes).await?;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.channels.request_timeout_ms))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let deadlines: Arc<dyn crate::timers::Deadlines> = match &webhook_redis {
            Some(r) => Arc::new(crate::timers::redis::RedisDeadlines::new(
                r.clone(),
                &crate::redis::Keys::new(&config.redis.key_prefix),
            )),
            None => Arc::new(crate::timers::memory::MemoryDeadlines::default()),
        };
        let contacts: Arc<dyn crate::contacts::ContactStore> = match &webhook_redis {
            Some(r) => Arc::new(crate::contacts::redis::RedisContacts::new(
                r.clone(),
                &crate::redis::Keys::new(&config.redis.key_prefix),
            )),
            None => Arc::new(crate::contacts::memory::MemoryContacts::default()),
        };
        let media = crate::media::MediaStore::build(&config, &secret, webhook_redis.clone())?;
        let records: Arc<dyn crate::agents::records::Records> = match &webhook_redis {
            Some(r) => Arc::new(crate::agents::records::redis::RedisRecords::new(r.clone(), &config.redis.key_prefix)),
            None => Arc::new(crate::agents::records::memory::MemoryRecords::default()),
        };
        let rehost: Arc<crate::channels::inbound_rehost::RehostQueue> = match &webhook_redis {
            Some(r) => {
                let key = crate::redis::Keys::new(&config.redis.key_prefix).rehost_queue();
                Arc::new(RedisQueue::new(crate::redis::StreamQueue::new(r.clone(), key), 16, 100, "re-hosting"))
            }
            None => Arc::new(MemoryQueue),
        };
        let (roster, webhook_store, outbox) = side_backends(&config, &node_id, webhook_redis, memory_hooks);
        let agents = crate::agents::Presence::new(roster);
        let webhooks = crate::webhooks::Webhooks::new(&config, &node_id, webhook_store)?;
        let limits = crate::limits::Limits::new(&config);
        let presence = crate::hub::presence::PresenceGate::new(
            Duration::from_millis(config.ws.presence_interval_ms),
            config.ws.presence_max_members,
        );
        let state = AppState(Arc::new(Inner {
            config,
            node_id,
            store,
            channel_store,
            broker,
            channels: Registry::default(),
            outbox,
            rehost,
            http,
            presence,
            hub,
            watchers,
            tokens: TokenSigner::new(&secret),
            key_cache: DashMap::new(),
            accounts: Default::default(),
            templates: Default::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            events: crate::events::EventQueue::default(),
            bound: std::sync::OnceLock::new(),
            metrics,
            limits,
            webhooks,
            agents,
            deadlines,
            contacts,
            media,
            records,
        }));
        Ok((state, boot))
    }
}

/// The memory or Redis implementation of the smaller seams (agent roster, webhook store,
/// channel outbox queue): Redis exactly when the store is Redis (`redis` is its client); else
/// `memory_hooks`, the webhook store the memory store writes message events into.
fn side_backends(
    config: &Config,
    node_id: &str,
    redis: Option<crate::redis::RedisClient>,
    memory_hooks: Arc<crate::webhooks::MemoryWebhookStore>,
) -> (Arc<dyn crate::agents::Roster>, Arc<dyn crate::webhooks::WebhookStore>, Outbox) {
    use crate::agents::presence::{memory::MemoryRoster, redis::RedisRoster};
    use crate::webhooks::redis_store::RedisWebhookStore;
    match redis {
        Some(r) => {
            let stream = crate::redis::StreamQueue::new(
                r.clone(),
                crate::redis::Keys::new(&config.redis.key_prefix).channel_outbox(),
            );
            (
                Arc::new(RedisRoster::new(r.clone(), config, node_id)),
                Arc::new(RedisWebhookStore::new(r, &config.redis.key_prefix, config.webhooks.retry_horizon_secs)),
                Outbox::new(Arc::new(RedisQueue::new(stream, 64, 50, "outbox"))),
            )
        }
        None => (Arc::new(MemoryRoster::default()), memory_hooks, Outbox::new(Arc::new(MemoryQueue))),
    }
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains: WebSockets are closed
/// with 1001 and the call returns once they are gone or the grace period ran out.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        let _ = state.bound.set(addr.to_string());
    }
    let app = crate::api::router(state.clone());
    crate::webhooks::start(&state).await?;
    state.outbox.start(&state);
    state.rehost.start(&state, crate::channels::inbound_rehost::schedule);
    crate::events::start_event_publisher(&state);
    crate::hub::presence::start(&state);
    crate::watch::start(&state);
    crate::conversations::status::start(&state);
    crate::conversations::retention::start(&state);
    state.tasks.spawn(crate::metrics::upkeep_loop(state.clone()));
    let token = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    let stop = state.shutdown.clone();
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    state.tasks.close();
    let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
    if tokio::time::timeout(grace, state.tasks.wait()).await.is_err() {
        tracing::warn!(remaining = state.tasks.len(), "shutdown grace period over; dropping what is left");
    }
    Ok(())
}
