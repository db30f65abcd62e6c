//! One handle on Redis for commands, single server or cluster, with a deadline on every call.
//!
//! Owns connecting (and failing clearly at start-up), the choice between `ConnectionManager`
//! (one multiplexed, self-reconnecting connection) and the cluster client, the per-command
//! timeout, and the mapping of every Redis failure to `Error::Unavailable`. It does not know
//! key names (see `keys`) or pub/sub subscriptions (the broker opens its own link).
//!
//! It also tracks the server's `run_id` (`INFO server`), which changes on every Redis restart:
//! learned when the client connects and again after any failed command (a restart always fails
//! the first command on the old connection), never per message. The store passes it to the
//! append script so a room notices a restart ([`RedisClient::run_id`]).
//!
//! Both connection kinds multiplex: concurrent commands from many tasks are pipelined on the
//! same socket, so the handle is cloned per call and never put behind a mutex.

use crate::config::RedisConfig;
use crate::error::{Error, Result};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Script, TlsCertificates, ToRedisArgs, Value};
use std::future::Future;
use std::time::Duration;

/// The two transports behind one `ConnectionLike`.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Cheap to clone; every clone shares the same connection(s).
#[derive(Clone)]
pub struct RedisClient {
    conn: Conn,
    timeout: Duration,
    cluster: bool,
    /// Where command latencies and errors are recorded (`switchboard_redis_*`).
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// The server's `run_id` as last learned; `None` after a failed command (relearned on the
    /// next [`RedisClient::run_id`]). Shared by every clone.
    run: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient").field("cluster", &self.cluster).finish_non_exhaustive()
    }
}

/// A single-server client for `url`; a `rediss://` URL trusts `ca` (PEM) when given, else
/// the bundled public roots.
pub fn single_client(url: &str, ca: Option<&[u8]>) -> RedisResult<redis::Client> {
    match ca {
        Some(pem) if url.starts_with("rediss://") => {
            redis::Client::build_with_tls(url, TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) })
        }
        _ => redis::Client::open(url),
    }
}

/// A cluster client builder for the seeds in `url`, trusting `ca` like [`single_client`].
pub fn cluster_builder(url: &str, ca: Option<&[u8]>) -> ClusterClientBuilder {
    let builder = ClusterClient::builder(urls(url));
    match ca {
        Some(pem) if url.trim_start().starts_with("rediss://") => {
            builder.certs(TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) })
        }
        _ => builder,
    }
}

/// The seed URLs of `redis.url` (a comma-separated list on a cluster).
pub fn urls(url: &str) -> Vec<String> {
    url.split(',').map(str::trim).filter(|u| !u.is_empty()).map(String::from).collect()
}

impl RedisClient {
    /// Connects and checks that Redis answers, within `redis.command_timeout_ms` per step.
    pub async fn connect(cfg: &RedisConfig) -> anyhow::Result<RedisClient> {
        let timeout = Duration::from_millis(cfg.command_timeout_ms);
        let ca = cfg.tls_ca()?;
        let conn = if cfg.cluster {
            let client = cluster_builder(&cfg.url, ca.as_deref())
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(2)
                .build()
                .map_err(|e| anyhow::anyhow!("redis.url `{}`: {e}", cfg.url))?;
            let conn = tokio::time::timeout(timeout * 3, client.get_async_connection())
                .await
                .map_err(|_| anyhow::anyhow!("cannot reach the Redis cluster at {}: timed out", cfg.url))?
                .map_err(|e| anyhow::anyhow!("cannot reach the Redis cluster at {}: {e}", cfg.url))?;
            Conn::Cluster(conn)
        } else {
            let client = single_client(&cfg.url, ca.as_deref()).map_err(|e| anyhow::anyhow!("redis.url: {e}"))?;
            // Few, quick retries: a caller waits at most `timeout` anyway, and a reconnect that
            // keeps going after that only delays noticing that Redis is back.
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            let conn = tokio::time::timeout(timeout * 3, client.get_connection_manager_with_config(config))
                .await
                .map_err(|_| anyhow::anyhow!("cannot reach Redis at {}: timed out", cfg.url))?
                .map_err(|e| anyhow::anyhow!("cannot reach Redis at {}: {e}", cfg.url))?;
            Conn::Single(conn)
        };
        let client = RedisClient { conn, timeout, cluster: cfg.cluster, metrics: None, run: Default::default() };
        client
            .query::<String>(&redis::cmd("PING"))
            .await
            .map_err(|e| anyhow::anyhow!("Redis at {} does not answer: {}", cfg.url, e.chain()))?;
        if !cfg.cluster {
            client.run_id().await.map_err(|e| anyhow::anyhow!("Redis at {}: {}", cfg.url, e.chain()))?;
        }
        Ok(client)
    }

    /// The `run_id` of the (single) Redis server, from the last `INFO server` since the
    /// connection was (re)established; read again only after a failed command. Empty on a
    /// cluster (every shard has its own; see redis.md for what that leaves open).
    pub async fn run_id(&self) -> Result<String> {
        if self.cluster {
            return Ok(String::new());
        }
        if let Some(r) = self.run.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(r);
        }
        let info: String = self.query(redis::cmd("INFO").arg("server")).await?;
        let run = parse_run_id(&info).ok_or_else(|| Error::unavailable("INFO server carries no run_id"))?;
        *self.run.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.clone());
        Ok(run)
    }

    /// Forgets the `run_id`: the connection failed, so Redis may have restarted meanwhile.
    fn forget_run_id(&self) {
        *self.run.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Whether this is a cluster client (a pipeline must then keep to one slot).
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The command that publishes on a room or events channel: `SPUBLISH` on a cluster, so a
    /// message only travels to the shard that owns the channel instead of every node.
    pub fn publish_command(&self) -> &'static str {
        if self.cluster { "SPUBLISH" } else { "PUBLISH" }
    }

    /// Runs `f` on a clone of the connection, bounded by the command timeout.
    /// This client, recording every command's latency and errors into `metrics`.
    pub fn observed(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> RedisClient {
        self.metrics = Some(metrics);
        self
    }

    async fn bounded<T, F, Fut>(&self, label: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let start = std::time::Instant::now();
        let r = match tokio::time::timeout(self.timeout, f(self.conn.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
                    self.forget_run_id();
                }
                Err(unavailable(e))
            }
            Err(_) => {
                self.forget_run_id();
                Err(Error::unavailable(format!("redis did not answer within {} ms", self.timeout.as_millis())))
            }
        };
        if let Some(m) = &self.metrics {
            m.redis_command(label, start.elapsed(), r.is_ok());
        }
        r
    }

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        self.bounded(command_label(cmd), |mut c| async move { cmd.query_async(&mut c).await }).await
    }

    /// A non-atomic pipeline; on a cluster every command in it must hit the same slot.
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        self.bounded("pipeline", |mut c| async move { pipe.query_async(&mut c).await }).await
    }

    /// `EVALSHA` (loading the script on `NOSCRIPT`) with the given keys and arguments.
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[&dyn ToRedisArgsDyn],
    ) -> Result<T> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in args {
            inv.arg(a.to_args());
        }
        self.bounded("evalsha", |mut c| async move { inv.invoke_async(&mut c).await }).await
    }
}

/// The `run_id:` line of an `INFO server` reply.
fn parse_run_id(info: &str) -> Option<String> {
    info.lines().find_map(|l| l.strip_prefix("run_id:")).map(|r| r.trim().to_string()).filter(|r| !r.is_empty())
}

/// A bounded label for a command's metrics: its name when it is one we use, else `other`.
fn command_label(cmd: &Cmd) -> &'static str {
    const KNOWN: &[&str] = &[
        "GET",
        "SET",
        "DEL",
        "EXPIRE",
        "HGET",
        "HSET",
        "HDEL",
        "HMGET",
        "HGETALL",
        "HSETNX",
        "HINCRBY",
        "SADD",
        "SREM",
        "SMEMBERS",
        "ZADD",
        "ZREM",
        "ZREVRANGEBYLEX",
        "ZRANGEBYSCORE",
        "XADD",
        "XRANGE",
        "XREVRANGE",
        "XREADGROUP",
        "XAUTOCLAIM",
        "XACK",
        "XDEL",
        "XGROUP",
        "XLEN",
        "PUBLISH",
        "SPUBLISH",
        "PING",
        "INCR",
        "EVALSHA",
        "SCRIPT",
    ];
    let Some(redis::Arg::Simple(name)) = cmd.args_iter().next() else { return "other" };
    KNOWN.iter().find(|k| k.as_bytes().eq_ignore_ascii_case(name)).copied().unwrap_or("other")
}

/// Object-safe stand-in for `ToRedisArgs`, so scripts take mixed argument types in one slice.
pub trait ToRedisArgsDyn: Sync {
    fn to_args(&self) -> Vec<Vec<u8>>;
}

impl<T: ToRedisArgs + Sync> ToRedisArgsDyn for T {
    fn to_args(&self) -> Vec<Vec<u8>> {
        self.to_redis_args()
    }
}

/// A Redis failure as callers see it: retryable, HTTP 503, WebSocket `error` without `ack`.
pub fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable_from("redis", e)
}
