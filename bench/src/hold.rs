//! `idle-cluster`: 50,000+ idle, subscribed connections on this machine.
//!
//! A process may hold at most 20,000 open files here, so one node cannot hold 50,000
//! sockets. The scenario does what a deployment would: several Redis-backed nodes on one
//! Redis (~17,000 connections each), and the generator split into one `hold` child process
//! per node, each binding its client sockets to its own range of source addresses
//! (127.0.0.2…). Once every connection is subscribed, each node's RSS growth per connection
//! is read from /proc; then one message is posted on the first node and every connection,
//! on every node, must receive it — so "held" means alive and reachable, not just open.

use crate::servers::{self, Api, Proc};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

/// Source addresses each `hold` child spreads its sockets over.
const SOURCES_PER_CHILD: u8 = 8;
/// How long a child waits for the broadcast to reach all its connections.
const RECEIVE_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize)]
pub struct IdleCluster {
    pub nodes: usize,
    pub per_node: usize,
    pub connections: usize,
    /// Connections that received the one broadcast message.
    pub received: usize,
    /// RSS growth per connection on each node, KiB.
    pub kib_per_connection: Vec<f64>,
    pub connect_secs: f64,
}

/// Child process: holds `n` subscribed connections from 127.0.0.`source`… until each has
/// received one message (or `RECEIVE_WITHIN` passed after all connected); prints `ready`,
/// then `received <k>`.
pub async fn hold(ws_base: &str, token: &str, room: &str, n: usize, source: u8) -> anyhow::Result<()> {
    let host = ws_base.trim_start_matches("ws://");
    let server: SocketAddr = host.parse()?;
    let got = Arc::new(AtomicUsize::new(0));
    let url = format!("{ws_base}/v1.0/ws?token={token}");
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let local = Ipv4Addr::new(127, 0, 0, source + (i % SOURCES_PER_CHILD as usize) as u8);
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(local.into(), 0))?;
        let stream = socket.connect(server).await?;
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(4096);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config)).await?;
        let sub = format!(r#"{{"type":"subscribe","conversation_id":"{room}"}}"#);
        ws.send(Message::Text(sub.into())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => break,
                Some(Ok(Message::Text(t))) if t.contains("\"error\"") => anyhow::bail!("subscribe failed: {t}"),
                Some(Ok(_)) => continue,
                other => anyhow::bail!("connection {i} lost while subscribing: {other:?}"),
            }
        }
        let got = got.clone();
        tasks.push(tokio::spawn(async move {
            // Reading also answers the server's keepalive pings.
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m
                    && t.contains("\"type\":\"message\"")
                {
                    got.fetch_add(1, Ordering::Relaxed);
                    return ws;
                }
            }
            ws
        }));
    }
    println!("ready {n}");
    let deadline = Instant::now() + RECEIVE_WITHIN;
    while got.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("received {}", got.load(Ordering::Relaxed));
    Ok(())
}

/// Parent: `nodes` Redis-backed nodes with `per_node` connections each; see the module docs.
pub async fn cluster_idle(redis_url: &str, nodes: usize, per_node: usize) -> anyhow::Result<IdleCluster> {
    let mut procs: Vec<Proc> = Vec::new();
    for _ in 0..nodes {
        procs.push(servers::hub(Some(redis_url)).await?);
    }
    let api = Api::new(&procs[0]);
    let room = api.conversation().await?;
    let token = api.operator_token("idle-cluster").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before: Vec<u64> = procs.iter().map(Proc::rss_bytes).collect();
    let started = Instant::now();
    let mut children = Vec::new();
    for (k, node) in procs.iter().enumerate() {
        let source = 2 + (k as u8) * SOURCES_PER_CHILD;
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["hold", "--ws", &node.ws(), "--token", &token, "--room", &room])
            .args(["--n", &per_node.to_string(), "--source", &source.to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        children.push((child, lines));
    }
    for (_, lines) in children.iter_mut() {
        let line = lines.next_line().await?.unwrap_or_default();
        anyhow::ensure!(line.starts_with("ready"), "a hold process failed before all its connections were up");
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kib_per_connection: Vec<f64> = procs
        .iter()
        .zip(&before)
        .map(|(p, b)| p.rss_bytes().saturating_sub(*b) as f64 / per_node as f64 / 1024.0)
        .collect();
    api.post(&format!("/v1.0/conversations/{room}/messages"), serde_json::json!({"text": "hello, everyone"})).await?;
    let mut received = 0;
    for (mut child, mut lines) in children {
        let line = lines.next_line().await?.unwrap_or_default();
        received += line.strip_prefix("received ").and_then(|n| n.trim().parse::<usize>().ok()).unwrap_or(0);
        let _ = child.wait().await;
    }
    Ok(IdleCluster { nodes, per_node, connections: nodes * per_node, received, kib_per_connection, connect_secs })
}
