//! Test harness: the real server on 127.0.0.1:0 (in-process), real HTTP and WebSocket clients.
#![allow(dead_code)]

pub mod browser;
pub mod channels;
pub mod monitor;
pub mod provision;
pub mod redis;
pub mod smtp;
pub mod stub;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard::{AppState, Config};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const KEY_A: &str = "sk_test_tenant_a_0123456789";
pub const KEY_B: &str = "sk_test_tenant_b_0123456789";
pub const SECRET: &str = "test-secret-test-secret-test-secret!";

/// Defaults plus two tenants (`a`, `b`) with known keys and a fixed token secret.
pub fn test_config() -> Config {
    let mut c = Config::defaults();
    c.server.listen = "127.0.0.1:0".into();
    c.server.static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/static").into();
    c.server.sdk_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/js/src").into();
    c.server.shutdown_grace_secs = 5;
    c.auth.token_secret = SECRET.into();
    // Throughput tests post thousands of messages per key; rate limits have their own tests.
    c.limits.api_rate_per_sec = 0;
    c.ws.rate_per_sec = 0;
    // Presence frames at once, in order with typing and reads; coalescing has its own tests.
    c.ws.presence_interval_ms = 0;
    // One media directory per test process, shared by the nodes it starts (as a shared mount).
    c.media.dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("media-{}", std::process::id()))
        .to_string_lossy()
        .into_owned();
    c.media.shared = true;
    c.tenants = vec![
        switchboard::config::TenantConfig {
            id: None,
            name: "a".into(),
            api_keys: vec![KEY_A.into()],
            timers: Default::default(),
            retention_days: None,
        },
        switchboard::config::TenantConfig {
            id: None,
            name: "b".into(),
            api_keys: vec![KEY_B.into()],
            timers: Default::default(),
            retention_days: None,
        },
    ];
    c
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// The private `redis-server` behind a Redis-backed test server (dropped with it).
    pub redis: Option<redis::RedisServer>,
}

/// Which store a test server runs on; suites that must hold on both loop over [`BACKENDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
}

pub const BACKENDS: [Backend; 2] = [Backend::Memory, Backend::Redis];

/// Runs `test` on each of [`BACKENDS`] in turn.
pub async fn on_every_backend(test: impl AsyncFn(Backend)) {
    for backend in BACKENDS {
        test(backend).await;
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(test_config()).await
    }

    /// `config` on `backend`; for Redis, a private `redis-server` is started for this server.
    pub async fn start_on(backend: Backend, mut config: Config) -> TestServer {
        match backend {
            Backend::Memory => Self::start_with(config).await,
            Backend::Redis => {
                let r = redis::RedisServer::start().await;
                config.store.backend = switchboard::config::Backend::Redis;
                config.redis.url = r.url();
                let mut srv = Self::start_with(config).await;
                srv.redis = Some(r);
                srv
            }
        }
    }

    pub async fn start_with(config: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind(&config.server.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (state, _) = AppState::build(config).await.unwrap();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(switchboard::app::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        TestServer { addr, state, shutdown: Some(tx), handle: Some(handle), redis: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn api(&self, key: &str) -> Api {
        Api { client: reqwest::Client::new(), base: self.url(""), key: key.to_string() }
    }

    /// An `Api` that sends `token` (a client, agent or operator token) instead of an API key.
    pub fn as_token(&self, token: &str) -> Api {
        self.api(token)
    }

    pub async fn ws(&self, token: &str) -> Ws {
        Ws::connect(&format!("ws://{}/v1.0/ws?token={token}", self.addr)).await
    }

    /// Triggers shutdown and waits until `serve` returned.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("server stops within grace")
                .unwrap()
                .unwrap();
        }
    }
}

/// A REST client bound to one API key.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.base, path)).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a conversation and returns its id.
    pub async fn conversation(&self, name: &str) -> String {
        let (s, v) = self.post("/v1.0/conversations", json!({"name": name})).await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Adds a webchat participant and returns its id.
    pub async fn webchat(&self, conversation: &str, identity: &str) -> String {
        let (s, v) = self
            .post(
                &format!("/v1.0/conversations/{conversation}/participants"),
                json!({"address": {"type": "webchat", "target": identity, "name": identity}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Mints a client token for `identity` scoped to `conversations`.
    pub async fn token(&self, identity: &str, conversations: &[&str]) -> String {
        let (s, v) = self.post("/v1.0/tokens", json!({"identity": identity, "conversation_ids": conversations})).await;
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }
}

/// A WebSocket client speaking the JSON protocol.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

pub const WAIT: Duration = Duration::from_secs(5);

impl Ws {
    pub async fn connect(url: &str) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Ws { stream }
    }

    pub async fn send(&mut self, v: Value) {
        self.stream.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    /// The next text frame as JSON; panics on close or after `WAIT`.
    pub async fn next(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(WAIT, self.stream.next()).await.expect("frame within 5s");
            match m {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame of `kind`, skipping presence/typing/read noise (and, when waiting for an
    /// `ack`, the sender's own copy of its message, which may arrive first).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next().await;
            if v["type"] == kind {
                return v;
            }
            let noise = matches!(v["type"].as_str(), Some("presence" | "typing" | "read"))
                || (kind == "ack" && v["type"] == "message");
            assert!(noise, "expected `{kind}`, got {v}");
        }
    }

    /// The next frame that is not presence/typing/read noise, whatever its type.
    pub async fn next_real(&mut self) -> Value {
        loop {
            let f = self.next().await;
            if !matches!(f["type"].as_str(), Some("presence" | "typing" | "read")) {
                return f;
            }
        }
    }

    /// Subscribes and returns the `subscribed` frame.
    pub async fn subscribe(&mut self, conversation: &str, since: Option<u64>) -> Value {
        let mut f = json!({"type": "subscribe", "conversation_id": conversation});
        if let Some(s) = since {
            f["since"] = json!(s);
        }
        self.send(f).await;
        self.next_of("subscribed").await
    }

    /// Waits for the close frame and returns its code; panics if none arrives in time.
    pub async fn close_code(&mut self) -> u16 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let m = tokio::time::timeout_at(deadline, self.stream.next()).await.expect("close within 15s");
            match m {
                Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => return code.into(),
                Some(Ok(Message::Close(None))) => panic!("close frame without code"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("connection failed before a close frame: {e}"),
                None => panic!("stream ended without a close frame"),
            }
        }
    }
}
