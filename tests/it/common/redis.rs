//! Real processes for the Redis backend tests: `redis-server` (alone or as a 3-master cluster)
//! and, in `node`, `switchboard` nodes (the built binary) pointed at it.
//!
//! Owns the Redis processes' lifecycles — free ports, private data dirs, readiness waits,
//! SIGKILL, SIGSTOP and restart (also from a snapshot), cleanup on drop. Never touches :6379 or
//! any Redis it did not start. `node` owns the switchboard processes and the client-side
//! helpers the scenarios share; they are re-exported here so a scenario imports everything
//! Redis-backed from one place. The scenarios live in `tests/it/redis_backend/` and the
//! modules that run on both backends.

mod node;

pub use node::{Node, history, messages_until, next_within, room, seqs, serve_refused, tenant_id};

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

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
