//! Real processes for the Redis backend tests: `redis-server` (alone or as a 3-master cluster)
//! and `switchboard` nodes (the built binary) pointed at it.
//!
//! Owns process lifecycles — free ports, private data dirs, readiness waits, SIGKILL and
//! restart, cleanup on drop — plus the few client-side helpers the scenarios share. Never
//! touches :6379 or any Redis it did not start. The scenarios live in `tests/redis_backend.rs`.

use super::{Api, Ws, test_config};
use futures_util::StreamExt;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchboard::config::{Backend, TenantConfig};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

/// A port nobody listens on right now (the OS picks it; we release it for the child).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A free port whose cluster bus port (the port + 10000) exists and is free too: a cluster node
/// listens on both, and an ephemeral port above 55535 has no bus port.
fn free_cluster_port() -> u16 {
    loop {
        let p = free_port();
        if p <= 55_535 && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
}

/// `redis-server` / `redis-cli`, installed with Debian's `redis-server` package when missing.
pub fn redis_binary(name: &str) -> PathBuf {
    super::provision::ensure(name, "redis-server")
}

/// Polls `check` every 25 ms until it returns true, failing with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One `redis-server` on a free port with its own data dir; SIGKILLed on drop.
pub struct RedisServer {
    pub port: u16,
    dir: TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Without persistence (`--save ""`, no AOF).
    pub async fn start() -> RedisServer {
        Self::start_with(&["--appendonly", "no"]).await
    }

    /// With AOF and `appendfsync always`: every acknowledged write survives a SIGKILL.
    pub async fn start_durable() -> RedisServer {
        Self::start_with(&["--appendonly", "yes", "--appendfsync", "always"]).await
    }

    pub async fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = if extra.contains(&"--cluster-enabled") { free_cluster_port() } else { free_port() };
        let mut s = RedisServer { port, dir, args: extra.iter().map(|a| a.to_string()).collect(), child: None };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("log file");
        let child = Command::new(redis_binary("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let url = self.url();
        wait_until(Duration::from_secs(10), "redis-server to answer PING", || ping(url.clone())).await;
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown save, no goodbye to clients.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process stays, its sockets stay open, nothing answers (a stalled Redis).
    /// Pair with [`RedisServer::resume`].
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("redis-server running").id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().expect("run kill").success();
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// Starts again on the same port and data dir (replaying the AOF if enabled).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// `SAVE`s now and returns a copy of the snapshot (`dump.rdb`): what a backup, or a replica
    /// that is behind, holds of the data at this moment.
    pub async fn snapshot(&self) -> Vec<u8> {
        let mut c = self.connection().await;
        redis::cmd("SAVE").query_async::<()>(&mut c).await.expect("SAVE");
        std::fs::read(self.dir.path().join("dump.rdb")).expect("read dump.rdb")
    }

    /// SIGKILLs the server and starts it again from `snapshot` (as taken by `snapshot`):
    /// every write acknowledged after that snapshot is gone. Needs a server without AOF.
    pub async fn restart_from(&mut self, snapshot: &[u8]) {
        self.kill();
        std::fs::write(self.dir.path().join("dump.rdb"), snapshot).expect("write dump.rdb");
        self.spawn().await;
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).expect("client");
        client.get_multiplexed_async_connection().await.expect("connect to test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ping(url: String) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let attempt = async {
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()
    };
    matches!(tokio::time::timeout(Duration::from_millis(500), attempt).await, Ok(Some(_)))
}

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

/// Three masters, no replicas, every slot assigned.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Three masters, no replicas.
    pub async fn start() -> RedisCluster {
        Self::start_with_replicas(0).await
    }

    /// Three masters with `replicas` replicas each (`nodes[0..3]` are the masters), and a
    /// 1-second node timeout so a killed master fails over in a few seconds.
    pub async fn start_with_replicas(replicas: usize) -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..3 * (1 + replicas) {
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
                // A replica syncs at once (the default waits 5 s for more replicas).
                "--repl-diskless-sync-delay",
                "0",
                "--appendonly",
                "no",
            ];
            nodes.push(RedisServer::start_with(&args).await);
        }
        let out = tokio::process::Command::new(redis_binary("redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .await
            .expect("run redis-cli --cluster create");
        assert!(out.status.success(), "cluster create failed: {}", String::from_utf8_lossy(&out.stdout));
        for n in &nodes {
            let url = n.url();
            wait_until(Duration::from_secs(20), "cluster_state:ok on every node", || cluster_ok(url.clone())).await;
        }
        RedisCluster { nodes }
    }

    /// Every node as a seed, comma-separated (the `redis.url` form for a cluster).
    pub fn url(&self) -> String {
        self.nodes.iter().map(|n| n.url()).collect::<Vec<_>>().join(",")
    }
}

async fn cluster_ok(url: String) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else { return false };
    let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut c).await.unwrap_or_default();
    info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
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
