//! `switchboard-bench`: drives running servers over real WebSockets and HTTP and reports
//! every hub figure next to a baseline broadcast server measured in the same run.
//!
//! `switchboard-bench all` (after `cargo build --release --workspace`, which builds the server
//! binary next to this one) starts each server itself on 127.0.0.1, runs every scenario, and
//! writes `target/bench/results.md` and `results.json`.
//! Any lost, duplicated or out-of-order delivery makes it exit non-zero.

mod all;
mod baseline;
mod bigroom;
mod burst;
mod hold;
mod ingest;
mod peer;
mod pin;
mod probe;
mod report;
mod scenarios;
mod servers;
mod targets;
mod upload;

use clap::{Parser, Subcommand};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "switchboard-bench", about = "Load generator and benchmark suite for Switchboard")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run every scenario and write target/bench/results.{md,json}.
    All {
        /// Subscribers in the fanout scenario.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Rooms in the rooms scenario.
        #[arg(long, default_value_t = 1000)]
        rooms: usize,
        /// Idle connections on one node (the 20,000 open-files cap allows ~19,000).
        #[arg(long, default_value_t = 19_000)]
        idle: usize,
        /// Skip the Redis scenarios (no redis-server on this machine).
        #[arg(long)]
        no_redis: bool,
        /// Connections per node in the multi-node idle scenario (0 skips it).
        #[arg(long, default_value_t = 17_000)]
        cluster_idle: usize,
        /// How `rooms` peers authenticate.
        #[arg(long, value_enum, default_value_t = scenarios::Auth::Scoped)]
        auth: scenarios::Auth,
        /// Members of the `bigroom` scenario (0 skips it).
        #[arg(long, default_value_t = 10_000)]
        bigroom: usize,
    },
    /// Run only the rooms scenario: baseline, hub on memory and (with `--redis`) on Redis, in
    /// one run, with Redis command time per message.
    Rooms {
        #[arg(long, default_value_t = 1000)]
        rooms: usize,
        #[arg(long)]
        redis: bool,
        #[arg(long, value_enum, default_value_t = scenarios::Auth::Scoped)]
        auth: scenarios::Auth,
        #[arg(long, value_delimiter = ',', default_values_t = ROOM_RATES.to_vec())]
        rates: Vec<u64>,
        /// Drive an already running hub at this base URL (e.g. one under valgrind) instead of
        /// starting servers; its tenant must have the bench API key.
        #[arg(long)]
        url: Option<String>,
    },
    /// Run only the bigroom scenario (memory, or `--redis`).
    Bigroom {
        #[arg(long, default_value_t = 10_000)]
        members: usize,
        #[arg(long, default_value_t = 10)]
        join_secs: u64,
        #[arg(long, default_value_t = 20)]
        rate: u64,
        #[arg(long)]
        redis: bool,
    },
    /// Hold idle connections spread over several Redis-backed nodes (50,000+ in all; one
    /// node cannot hold them under a 20,000 open-files cap) and check each gets a broadcast.
    IdleCluster {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 17_000)]
        per_node: usize,
    },
    /// Run only the idle scenario: server RSS per subscribed idle connection (the hub on
    /// memory, or the baseline with `--baseline`), with the slope from `--from` connections on.
    Idle {
        #[arg(long, default_value_t = 19_000)]
        idle: usize,
        #[arg(long, default_value_t = 1000)]
        from: usize,
        #[arg(long)]
        baseline: bool,
        /// The earlier shape: every connection in one room with one operator token (instead
        /// of a participant with a scoped token per connection, two per room).
        #[arg(long, conflicts_with = "baseline")]
        one_room: bool,
        /// Drive an already running hub at this base URL (e.g. one under heaptrack) whose
        /// process is `--pid`, instead of starting one.
        #[arg(long, requires = "pid")]
        url: Option<String>,
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Run only the ingest scenario (memory node, or Redis-backed with `--redis`).
    Ingest {
        #[arg(long)]
        redis: bool,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// One generator process of `idle-cluster` (started by it).
    #[command(hide = true)]
    Hold {
        #[arg(long)]
        ws: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        room: String,
        #[arg(long)]
        n: usize,
        #[arg(long)]
        source: u8,
    },
    /// Run only the fanout scenario (hub on memory, or on a private Redis with `--redis`;
    /// `--baseline` measures the baseline instead) and print its table.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long)]
        redis: bool,
        #[arg(long)]
        baseline: bool,
        /// Offered publish rates, messages/s.
        #[arg(long, value_delimiter = ',', default_values_t = FANOUT_RATES.to_vec())]
        rates: Vec<u64>,
    },
    /// Run only the burst scenario: `--n` connections opened at once on the baseline and on a
    /// memory node.
    Burst {
        #[arg(long, default_value_t = BURST)]
        n: usize,
    },
    /// Run only the upload scenario: one `--mib` MiB file to `POST /v1.0/media` of a fresh
    /// memory node, with the server's RSS before, at its peak and after.
    Upload {
        #[arg(long, default_value_t = 100)]
        mib: usize,
    },
    /// Serve the baseline broadcast server (used by `all`).
    Baseline {
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Baseline { .. } | Cmd::Hold { .. }) {
        pin::pin_generator();
    }
    let rt = tokio::runtime::Runtime::new()?;
    match cli.cmd {
        Cmd::Baseline { listen } => rt.block_on(baseline::serve(&listen)),
        Cmd::All { subscribers, rooms, idle, no_redis, cluster_idle, auth, bigroom } => {
            rt.block_on(all::all(subscribers, rooms, idle, no_redis, cluster_idle, auth, bigroom))
        }
        Cmd::Rooms { rooms, redis, auth, rates, url } => rt.block_on(rooms_only(rooms, redis, auth, &rates, url)),
        Cmd::Bigroom { members, join_secs, rate, redis } => {
            rt.block_on(bigroom_only(members, Duration::from_secs(join_secs), rate, redis))
        }
        Cmd::Idle { idle, from, baseline, one_room, url, pid } => {
            rt.block_on(idle_only(idle, from, baseline, one_room, url, pid))
        }
        Cmd::Ingest { redis, concurrency } => rt.block_on(ingest_only(redis, concurrency)),
        Cmd::Burst { n } => rt.block_on(async {
            let mut r = report::Report::new();
            r.burst_base = Some(burst::burst(&servers::baseline().await?, false, n).await?);
            r.burst_hub = Some(burst::burst(&scenarios::node(None).await?, true, n).await?);
            println!("{}", r.markdown());
            Ok(())
        }),
        Cmd::Upload { mib } => rt.block_on(async {
            let node = scenarios::node(None).await?;
            let u = upload::upload(&node, mib).await?;
            println!("{}", u.markdown());
            Ok(())
        }),
        Cmd::IdleCluster { nodes, per_node } => rt.block_on(idle_cluster_only(nodes, per_node)),
        Cmd::Hold { ws, token, room, n, source } => rt.block_on(hold::hold(&ws, &token, &room, n, source)),
        Cmd::Fanout { subscribers, redis, baseline, rates } => {
            rt.block_on(fanout_only(subscribers, redis, baseline, &rates))
        }
    }
}

const FANOUT_RATES: &[u64] = &[50, 100, 200, 300, 400, 800, 1200, 1600, 2400, 3200];
const ROOM_RATES: &[u64] = &[5000, 10000, 20000];
/// Connections opened at once in the `burst` scenario (issue 18: all open in ≤ 0.3 s).
const BURST: usize = 1000;

/// The rooms scenario on the Redis backend, with Redis's command time per message.
async fn rooms_redis(rooms: usize, auth: scenarios::Auth, rates: &[u64]) -> anyhow::Result<(scenarios::Sweep, f64)> {
    let redis = servers::redis().await?;
    let hub = scenarios::node(Some(&format!("redis://127.0.0.1:{}", redis.port))).await?;
    let sweep = scenarios::rooms(&hub, true, rooms, rates, auth, Some(redis.port)).await?;
    // Redis CPU (commands and I/O) per message posted, over the steps (setup left out).
    let (mut us, mut sent) = (0.0, 0u64);
    for st in &sweep.steps {
        us += st.redis_cpu_us.unwrap_or(0.0) * (st.expected / 2) as f64;
        sent += st.expected / 2;
    }
    Ok((sweep, us / sent.max(1) as f64))
}

async fn rooms_only(
    rooms: usize,
    redis: bool,
    auth: scenarios::Auth,
    rates: &[u64],
    url: Option<String>,
) -> anyhow::Result<()> {
    let mut r = report::Report::new();
    if let Some(url) = url {
        let port = url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap_or(0);
        let external = servers::Proc::external(port);
        r.rooms_hub = Some(scenarios::rooms(&external, true, rooms, rates, auth, None).await?);
    } else {
        let base = servers::baseline().await?;
        r.rooms_base = Some(scenarios::rooms(&base, false, rooms, rates, auth, None).await?);
        drop(base);
        let hub = scenarios::node(None).await?;
        r.rooms_hub = Some(scenarios::rooms(&hub, true, rooms, rates, auth, None).await?);
        drop(hub);
        if redis {
            let (sweep, us) = rooms_redis(rooms, auth, rates).await?;
            r.rooms_redis = Some(sweep);
            r.redis_us_per_message = Some(us);
        }
    }
    println!("{}", r.markdown());
    let problems = r.problems();
    anyhow::ensure!(problems.is_empty(), "delivery errors: {}", problems.join("; "));
    Ok(())
}

async fn bigroom_only(members: usize, join: Duration, rate: u64, redis: bool) -> anyhow::Result<()> {
    let mut r = report::Report::new();
    let server = if redis { Some(servers::redis().await?) } else { None };
    let url = server.as_ref().map(|s| format!("redis://127.0.0.1:{}", s.port));
    let hub = scenarios::node(url.as_deref()).await?;
    r.bigroom = Some(bigroom::bigroom(&hub, members, join, rate).await?);
    println!("{}", r.markdown());
    Ok(())
}

async fn fanout_only(subscribers: usize, redis: bool, baseline: bool, rates: &[u64]) -> anyhow::Result<()> {
    let mut r = report::Report::new();
    if baseline {
        let base = servers::baseline().await?;
        r.fanout_base = Some(scenarios::fanout(&base, false, subscribers, rates, None).await?);
    } else if redis {
        let server = servers::redis().await?;
        let hub = scenarios::node(Some(&format!("redis://127.0.0.1:{}", server.port))).await?;
        r.fanout_redis = Some(scenarios::fanout(&hub, true, subscribers, rates, Some(server.port)).await?);
    } else {
        let hub = scenarios::node(None).await?;
        r.fanout_hub = Some(scenarios::fanout(&hub, true, subscribers, rates, None).await?);
    }
    println!("{}", r.markdown());
    let problems = r.problems();
    anyhow::ensure!(problems.is_empty(), "delivery errors: {}", problems.join("; "));
    Ok(())
}

async fn idle_only(
    n: usize,
    from: usize,
    baseline: bool,
    one_room: bool,
    url: Option<String>,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let node = match url {
        Some(url) => servers::Proc::external(url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)),
        None if baseline => servers::baseline().await?,
        None => scenarios::node(None).await?,
    };
    let rss = || pid.map_or_else(|| node.rss_bytes(), servers::rss_of);
    let i = scenarios::idle_from(&node, !baseline, one_room, from, n, rss).await?;
    let slope = i.slope_bytes_per_connection.map_or("–".into(), |s| format!("{:.2} KiB", s / 1024.0));
    println!(
        "idle {}{}: {} connections, RSS {:.1} → {:.1} MiB, {:.2} KiB per connection, slope from {}: {slope}",
        if baseline { "baseline" } else { "hub" },
        if one_room { " (one room, one operator token)" } else { "" },
        i.connections,
        i.rss_before_mib,
        i.rss_after_mib,
        i.bytes_per_connection / 1024.0,
        i.from,
    );
    Ok(())
}

async fn ingest_only(redis: bool, concurrency: usize) -> anyhow::Result<()> {
    let mut r = report::Report::new();
    let server = if redis { Some(servers::redis().await?) } else { None };
    let url = server.as_ref().map(|s| format!("redis://127.0.0.1:{}", s.port));
    let hub = scenarios::node(url.as_deref()).await?;
    let port = server.as_ref().map(|s| s.port);
    let result = Some(scenarios::ingest(&hub, concurrency, Duration::from_secs(5), port).await?);
    if redis {
        r.ingest_redis = result;
    } else {
        r.ingest_memory = result;
    }
    println!("{}", r.markdown());
    let problems = r.problems();
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}

async fn idle_cluster_only(nodes: usize, per_node: usize) -> anyhow::Result<()> {
    let redis = servers::redis().await?;
    let mut r = report::Report::new();
    r.idle_cluster = Some(hold::cluster_idle(&format!("redis://127.0.0.1:{}", redis.port), nodes, per_node).await?);
    println!("{}", r.markdown());
    let problems = r.problems();
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(())
}
