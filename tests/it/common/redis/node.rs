//! `switchboard` processes (the real binary) on the Redis backend, and the client-side helpers
//! the Redis scenarios share (tenant ids, reading frames with a deadline, rooms and history).
//!
//! Owns a node's lifecycle: its TOML config written from `test_config`, readiness on `/readyz`,
//! SIGKILL and restart on the same port, its log for assertion messages, and a node that must
//! refuse to start (`serve_refused`). It does not start Redis: the parent module does.

use super::free_port;
use crate::common::{Api, Ws, test_config};
use futures_util::StreamExt;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchboard::config::{Backend, TenantConfig};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

/// Runs `switchboard serve` on a Redis-backed config pointing at `redis_url` (with `tweak`
/// applied) and expects it to refuse to start: asserts a failed exit within 15 s and returns
/// its stderr.
pub async fn serve_refused(redis_url: &str, tweak: impl FnOnce(&mut switchboard::Config)) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut c = test_config();
    c.server.listen = format!("127.0.0.1:{}", free_port());
    c.store.backend = Backend::Redis;
    c.redis.url = redis_url.to_string();
    tweak(&mut c);
    let path = dir.path().join("config.toml");
    std::fs::write(&path, toml::to_string(&c).expect("config serializes to TOML")).expect("write config");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .output();
    let out =
        tokio::time::timeout(Duration::from_secs(15), out).await.expect("exits promptly").expect("run switchboard");
    assert!(!out.status.success(), "the node started, but should have refused to");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A `switchboard` process (the real binary) on the Redis backend.
pub struct Node {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl Node {
    /// Writes the test config (tenants `a`/`b`, fixed secret, no rate limits) as a TOML file
    /// pointing at `redis_url`, starts the binary and waits for `/readyz`.
    pub async fn start(redis_url: &str, cluster: bool) -> Node {
        Self::start_with(redis_url, cluster, |_| {}).await
    }

    /// `start`, with `tweak` applied to the config first.
    pub async fn start_with(redis_url: &str, cluster: bool, tweak: impl FnOnce(&mut switchboard::Config)) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut c = test_config();
        c.server.listen = format!("127.0.0.1:{port}");
        c.store.backend = Backend::Redis;
        c.redis.url = redis_url.to_string();
        c.redis.cluster = cluster;
        // Outage tests wait for a failed write; keep that wait short.
        c.redis.command_timeout_ms = 1000;
        c.log.filter = "warn,switchboard=info".into();
        tweak(&mut c);
        let toml = toml::to_string(&c).expect("config serializes to TOML");
        std::fs::write(dir.path().join("config.toml"), toml).expect("write config");
        let mut node = Node { port, dir, child: None };
        node.spawn().await;
        node
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// The node's stderr so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("node.log"))
            .expect("node log");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--config")
            .arg(self.config_path())
            .arg("serve")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn switchboard");
        self.child = Some(child);
        let url = self.url("/readyz");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("switchboard exited with {status} before ready:\n{}", self.log());
            }
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "node not ready in 20s:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no drain, no flush — whatever was acked must already be in Redis.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Same port, same config.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn api(&self, key: &str) -> Api {
        Api { client: reqwest::Client::new(), base: self.url(""), key: key.to_string() }
    }

    pub async fn ws(&self, token: &str) -> Ws {
        Ws::connect(&format!("ws://127.0.0.1:{}/v1.0/ws?token={token}", self.port)).await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- client-side helpers shared by the scenarios ----

pub fn tenant_id(name: &str) -> Uuid {
    TenantConfig { id: None, name: name.into(), api_keys: vec![], timers: Default::default(), retention_days: None }
        .tenant_id()
}

/// The next JSON text frame within `limit`, or `None`.
pub async fn next_within(ws: &mut Ws, limit: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, ws.stream.next()).await.ok()?? {
            Ok(WsMessage::Text(t)) => return Some(serde_json::from_str(&t).expect("json frame")),
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
            other => panic!("unexpected websocket event {other:?}"),
        }
    }
}

/// Reads frames until a `message` frame with seq `last` arrived; returns every message frame's
/// message (other frames — acks, presence, typing — are skipped).
pub async fn messages_until(ws: &mut Ws, last: u64, limit: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while got.last().and_then(|m: &Value| m["seq"].as_u64()) != Some(last) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f =
            next_within(ws, left).await.unwrap_or_else(|| panic!("no message seq {last} in {limit:?}; got {got:?}"));
        if f["type"] == "message" {
            got.push(f["message"].clone());
        }
    }
    got
}

pub fn seqs(msgs: &[Value]) -> Vec<u64> {
    msgs.iter().map(|m| m["seq"].as_u64().expect("seq")).collect()
}

/// A room with webchat participants `identities`, and a token for each.
pub async fn room(api: &Api, name: &str, identities: &[&str]) -> (String, Vec<String>) {
    let conv = api.conversation(name).await;
    let mut tokens = Vec::new();
    for id in identities {
        api.webchat(&conv, id).await;
        tokens.push(api.token(id, &[&conv]).await);
    }
    (conv, tokens)
}

pub async fn history(api: &Api, conv: &str) -> Vec<Value> {
    let (s, v) = api.get(&format!("/v1.0/conversations/{conv}/messages?page_size=100")).await;
    assert_eq!(s, 200, "{v}");
    v["result"].as_array().expect("result").clone()
}
