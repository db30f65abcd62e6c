//! Application state and lifecycle: wiring the backend, the router, and a graceful drain.
//!
//! `AppState` is a cheap `Arc` clone handed to every handler and session. Shutdown is one
//! `CancellationToken` (sessions close with 1001 when it fires) plus a `TaskTracker` the
//! server waits on, bounded by `server.shutdown_grace_secs`.

use crate::auth::{TokenSigner, hash_api_key, random_key};
use crate::broker::{Broker, MemoryBroker};
use crate::config::{Backend, Config};
use crate::hub::Hub;
use crate::model::Tenant;
use crate::store::{MemoryStore, Store};
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
    pub broker: Arc<dyn Broker>,
    pub hub: Hub,
    pub tokens: TokenSigner,
    /// API-key hash → tenant, filled on first use (keys are not revocable at run time yet).
    pub key_cache: DashMap<String, Tenant>,
    /// Fires when the node starts shutting down.
    pub shutdown: CancellationToken,
    /// Every WebSocket session and background task, awaited on shutdown.
    pub tasks: TaskTracker,
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
        let (store, broker): (Arc<dyn Store>, Arc<dyn Broker>) = match config.store.backend {
            Backend::Memory => (
                Arc::new(MemoryStore::new(hub.clone(), Duration::from_secs(config.store.idempotency_ttl_secs))),
                Arc::new(MemoryBroker::new(hub.clone())),
            ),
            Backend::Redis => anyhow::bail!("store.backend = \"redis\" is not available in this build yet"),
        };
        let secret = if config.auth.token_secret.is_empty() {
            tracing::warn!("auth.token_secret is empty: using a random secret; client tokens die with this process");
            random_key("").into_bytes()
        } else {
            config.auth.token_secret.clone().into_bytes()
        };
        let node_id = if config.server.node_id.is_empty() {
            format!("node-{}", std::process::id())
        } else {
            config.server.node_id.clone()
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
        let state = AppState(Arc::new(Inner {
            config,
            node_id,
            store,
            broker,
            hub,
            tokens: TokenSigner::new(&secret),
            key_cache: DashMap::new(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }));
        Ok((state, boot))
    }
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains: WebSockets are closed
/// with 1001 and the call returns once they are gone or the grace period ran out.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = crate::api::router(state.clone());
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
