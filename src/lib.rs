//! # Switchboard
//!
//! A self-hosted conversation hub: conversation rooms kept live in memory, joined over
//! WebSocket by browsers, driven by a REST API, persisted to an embedded store or Redis.
//!
//! Map of the crate, ground floor first (`docs/architecture.md` has the layers and the data
//! flow; a module imports only from floors below its own):
//! - [`wire`]: frames, close codes, events and publications: every format on the wire.
//! - [`redis`]: the Redis client, key layout and stream queue every Redis component shares.
//! - [`conn`]: a connection's id, outbound queue and kill switch (shared by hub and watch).
//! - [`app`]: shared state, wiring of the backend, graceful drain.
//! - [`config`]: layered configuration and its validation.
//! - [`api`]: REST handlers, health, `/openapi.json`.
//! - [`ws`]: the WebSocket gateway: upgrade, session loop, commands.
//! - [`conversations`]: the one write path (validate → append → publish → event).
//! - [`hub`]: node-local rooms and fan-out to connections.
//! - [`watch`]: connections following their tenant's conversation list (`conversation` frames).
//! - [`store`]: durable state (memory or Redis) with the atomic append.
//! - [`timers`]: conversation deadlines (memory or Redis), each handed to one worker.
//! - [`broker`]: cross-node delivery (memory or Redis), the one handler that delivers to the
//!   hub and watchers, and the outside-consumer event channel.
//! - [`auth`], [`model`], [`error`]: API keys and client tokens, the nouns, the one error type.
//! - [`agents`]: conversation ownership, agent access rules, presence and auto-assignment.
//! - [`webhooks`]: customer webhooks: signed deliveries from an outbox, pre-post interception.
//! - [`media`]: stored files: uploads, signed downloads, re-hosted provider media.
//! - [`metrics`], [`limits`], [`logging`]: operations: Prometheus metrics, rate and connection
//!   limits, log setup that keeps secrets out.

pub mod agents;
pub mod api;
pub mod app;
pub mod auth;
pub mod broker;
pub mod channels;
pub mod config;
pub mod conn;
pub mod contacts;
pub mod conversations;
pub mod error;
pub mod events;
pub mod hub;
pub mod limits;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod model;
pub mod phone;
pub mod redis;
pub mod retry;
pub mod store;
pub mod timers;
pub mod watch;
pub mod webhooks;
pub mod wire;
pub mod ws;

pub use app::{AppState, Bootstrap};
pub use config::Config;

use std::future::Future;
use tokio::net::TcpListener;

/// A listener on `addr` with a listen backlog of `backlog` connections. `TcpListener::bind`
/// asks for 128, so a burst of new connections (a deploy, a reconnect storm) overflows the
/// queue and clients wait out a SYN retry (1 s, then 3 s…) before the server even sees them;
/// the kernel still caps the backlog at `net.core.somaxconn`.
pub async fn listen(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(a) {
            Ok(()) => return socket.listen(backlog),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "address resolves to nothing")))
}

/// Builds the node from `config` and serves on `listener` until `shutdown` resolves.
/// This is what `switchboard serve` runs and what tests call.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (state, boot) = AppState::build(config).await?;
    if let Some(key) = &boot.dev_api_key {
        tracing::info!("no tenants configured: created tenant `dev`");
        println!("dev tenant API key: {key}");
    }
    tracing::info!(addr = %listener.local_addr()?, node = %state.node_id, backend = ?state.config.store.backend, "switchboard listening");
    app::serve(listener, state, shutdown).await
}
