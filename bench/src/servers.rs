//! The processes under test: Switchboard nodes, the baseline, and a private `redis-server`,
//! each started on a free 127.0.0.1 port and killed when dropped.

use anyhow::Context;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

pub const API_KEY: &str = "sk_bench_0123456789abcdef";
pub const SECRET: &str = "bench-secret-bench-secret-bench-secret";
pub const TWILIO_TOKEN: &str = "bench-twilio-token";

/// A child process killed on drop.
pub struct Proc {
    /// `None`: a server this run did not start (`--url`), left running.
    pub child: Option<Child>,
    pub port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Proc {
    /// A server already running on 127.0.0.1:`port`.
    pub fn external(port: u16) -> Proc {
        Proc { child: None, port, _dir: None }
    }

    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
    /// Resident set size of the process, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let Some(child) = &self.child else { return 0 };
        rss_of(child.id())
    }
}

/// Resident set size of process `pid`, from /proc (0 when unknown).
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let p = me.with_file_name(name);
    anyhow::ensure!(p.exists(), "{} not found: build it first (`cargo build --release --workspace`)", p.display());
    Ok(p)
}

async fn wait_http(url: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{url} did not come up")
}

/// Starts a Switchboard node; `redis` = Some(url) selects the Redis backend.
pub async fn hub(redis: Option<&str>) -> anyhow::Result<Proc> {
    let port = free_port();
    let dir = tempfile::tempdir()?;
    let backend = match redis {
        Some(url) => format!("[store]\nbackend = \"redis\"\n[redis]\nurl = \"{url}\"\n"),
        None => String::new(),
    };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n{backend}[auth]\ntoken_secret = \"{SECRET}\"\n\
         [limits]\napi_rate_per_sec = 0\nprovider_rate_per_sec = 0\n\
         [ws]\nmax_connections = 19500\nmax_connections_per_identity = 19500\nrate_per_sec = 0\n\
         [media]\ndir = \"{media}\"\nmax_file_bytes = 209715200\nshared = {shared}\n\
         [[tenants]]\nname = \"bench\"\napi_keys = [\"{API_KEY}\"]\n[log]\nfilter = \"warn\"\n",
        media = dir.path().join("media").display(),
        // Several Redis-backed nodes of one run share this directory (one machine).
        shared = redis.is_some(),
    );
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, config)?;
    let child = crate::pin::server_command(&sibling("switchboard")?)
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()
        .context("spawn switchboard")?;
    let p = Proc { child: Some(child), port, _dir: Some(dir) };
    wait_http(&format!("{}/readyz", p.http())).await?;
    Ok(p)
}

/// Starts the baseline broadcast server (this binary, `baseline` subcommand).
pub async fn baseline() -> anyhow::Result<Proc> {
    let port = free_port();
    let child = crate::pin::server_command(&std::env::current_exe()?)
        .args(["baseline", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()?;
    let p = Proc { child: Some(child), port, _dir: None };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(p);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("baseline did not come up")
}

/// Starts a throwaway `redis-server` (no persistence) on a free port.
pub async fn redis() -> anyhow::Result<Proc> {
    let port = free_port();
    let dir = tempfile::tempdir()?;
    let child = crate::pin::floating_command("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .context("redis-server not found (apt-get install -y redis-server)")?;
    let p = Proc { child: Some(child), port, _dir: Some(dir) };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(p);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("redis-server did not come up")
}

/// REST helper against a hub node.
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(node: &Proc) -> Api {
        Api { http: reqwest::Client::new(), base: node.http() }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let r = self.http.post(format!("{}{path}", self.base)).bearer_auth(API_KEY).json(&body).send().await?;
        anyhow::ensure!(r.status().is_success(), "POST {path}: {}", r.status());
        Ok(r.json().await?)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let r = self.http.get(format!("{}{path}", self.base)).bearer_auth(API_KEY).send().await?;
        anyhow::ensure!(r.status().is_success(), "GET {path}: {}", r.status());
        Ok(r.json().await?)
    }

    pub async fn conversation(&self) -> anyhow::Result<String> {
        let c = self.post("/v1.0/conversations", serde_json::json!({"name": "bench"})).await?;
        Ok(c["id"].as_str().unwrap_or_default().to_string())
    }

    /// A webchat participant `identity` of `room` and its own token, scoped to that room: how
    /// real deployments connect end users.
    pub async fn participant_token(&self, room: &str, identity: &str) -> anyhow::Result<String> {
        let body = serde_json::json!({"address": {"type": "webchat", "target": identity}});
        self.post(&format!("/v1.0/conversations/{room}/participants"), body).await?;
        let t =
            self.post("/v1.0/tokens", serde_json::json!({"identity": identity, "conversation_ids": [room]})).await?;
        Ok(t["token"].as_str().unwrap_or_default().to_string())
    }

    /// An operator token: subscribes anywhere, joins on first send.
    pub async fn operator_token(&self, identity: &str) -> anyhow::Result<String> {
        let t = self.post("/v1.0/tokens", serde_json::json!({"identity": identity, "all_conversations": true})).await?;
        Ok(t["token"].as_str().unwrap_or_default().to_string())
    }
}
