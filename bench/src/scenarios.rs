//! The scenarios. Each drives real WebSockets (or HTTP) against a server process and returns
//! rows for the report; any lost, duplicated or out-of-order delivery is an error.

use crate::peer::{self, PeerStats, Target};
use crate::probe::{self, Probe};
use crate::servers::{self, Api, Proc};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One step of a rate sweep.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub rate: u64,
    pub expected: u64,
    pub delivered: u64,
    pub deliveries_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub kept_up: bool,
    /// Server CPU per message sent, over the step and its drain (µs; `None` for `--url`).
    pub server_cpu_us: Option<f64>,
    /// Redis CPU per message sent, likewise (Redis-backed runs only).
    pub redis_cpu_us: Option<f64>,
    /// Redis commands per message sent, most frequent first (Redis-backed runs only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redis_calls: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub steps: Vec<StepResult>,
    /// Highest deliveries/s of a step that kept up.
    pub max_deliveries_per_sec: f64,
    /// p99 at the step closest to half the highest kept-up rate.
    pub p99_at_half_ms: f64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
}

pub const STEP: Duration = Duration::from_secs(3);
const DRAIN: Duration = Duration::from_secs(2);

/// Publishes at each rate in `rates` (messages/s, spread over `senders`) and measures
/// `receivers`. `fanout` = how many receivers each message should reach.
pub async fn sweep(
    senders: &[tokio::sync::mpsc::UnboundedSender<String>],
    receivers: Vec<peer::Peer>,
    rates: &[u64],
    fanout: u64,
    epoch: Instant,
    stop: CancellationToken,
    probe: Probe,
) -> anyhow::Result<Sweep> {
    let mut v = sweep_groups(senders, vec![(receivers, fanout)], rates, epoch, stop, probe).await?;
    Ok(v.remove(0))
}

/// `sweep` measuring several receiver groups separately (e.g. subscribers on two nodes).
pub async fn sweep_groups(
    senders: &[tokio::sync::mpsc::UnboundedSender<String>],
    groups: Vec<(Vec<peer::Peer>, u64)>,
    rates: &[u64],
    epoch: Instant,
    stop: CancellationToken,
    probe: Probe,
) -> anyhow::Result<Vec<Sweep>> {
    let mut sent = vec![0u64; rates.len()];
    let mut cpu = Vec::with_capacity(rates.len());
    for (step, &rate) in rates.iter().enumerate() {
        let before = probe.read();
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let start = tokio::time::Instant::now();
        let mut i = 0u64;
        while start.elapsed() < STEP {
            tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
            // Catch up in bursts if the timer fell behind, so the offered rate is honest.
            while start + interval.mul_f64(i as f64) <= tokio::time::Instant::now() && start.elapsed() < STEP {
                let _ = senders[(i as usize) % senders.len()].send(peer::payload(epoch, step));
                i += 1;
            }
        }
        sent[step] = i;
        tokio::time::sleep(DRAIN).await;
        let after = probe.read();
        cpu.push((
            probe::per_message(before.server, after.server, i),
            probe::per_message(before.redis, after.redis, i),
            probe::calls_per_message(&before, &after, i),
        ));
    }
    stop.cancel();
    let mut out = Vec::new();
    for (receivers, fanout) in groups {
        let mut total = PeerStats::new(rates.len());
        for r in receivers {
            total.merge(&r.done.await?);
        }
        out.push(summarize(&total, rates, &sent, &cpu, fanout));
    }
    Ok(out)
}

type StepCpu = (Option<f64>, Option<f64>, Vec<(String, f64)>);

fn summarize(total: &PeerStats, rates: &[u64], sent: &[u64], cpu: &[StepCpu], fanout: u64) -> Sweep {
    let mut steps = Vec::new();
    for (i, &rate) in rates.iter().enumerate() {
        let expected = sent[i] * fanout;
        let h = &total.latency[i];
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let p99 = ms(0.99);
        let kept_up = total.received[i] >= expected * 99 / 100 && p99 < 1000.0;
        steps.push(StepResult {
            rate,
            expected,
            delivered: total.received[i],
            deliveries_per_sec: total.received[i] as f64 / STEP.as_secs_f64(),
            p50_ms: ms(0.5),
            p99_ms: p99,
            max_ms: h.max() as f64 / 1000.0,
            kept_up,
            server_cpu_us: cpu[i].0,
            redis_cpu_us: cpu[i].1,
            redis_calls: cpu[i].2.clone(),
        });
    }
    let best = steps.iter().filter(|s| s.kept_up).map(|s| s.deliveries_per_sec).fold(0.0, f64::max);
    let best_rate = steps.iter().filter(|s| s.kept_up).map(|s| s.rate).max().unwrap_or(rates[0]);
    let half = steps.iter().min_by_key(|s| (s.rate as i64 - best_rate as i64 / 2).abs()).map_or(0.0, |s| s.p99_ms);
    Sweep {
        steps,
        max_deliveries_per_sec: best,
        p99_at_half_ms: half,
        lost: total.lost,
        duplicated: total.duplicated,
        out_of_order: total.out_of_order,
    }
}

/// Two nodes on one Redis: publisher on `a`, `per_node` subscribers on each node.
/// Returns (subscribers on a, subscribers on b).
pub async fn cluster(a: &Proc, b: &Proc, per_node: usize, rates: &[u64]) -> anyhow::Result<(Sweep, Sweep)> {
    let epoch = Instant::now();
    let stop = CancellationToken::new();
    let api = Api::new(a);
    let room = api.conversation().await?;
    let token = api.operator_token("subscriber").await?;
    let mut groups = Vec::new();
    for node in [a, b] {
        let t = Target::Hub { ws_base: node.ws(), token: token.clone() };
        let mut g = Vec::new();
        for _ in 0..per_node {
            g.push(peer::connect(&t, &room, false, rates.len(), epoch, stop.clone()).await?);
        }
        groups.push((g, per_node as u64));
    }
    let publ = Target::Hub { ws_base: a.ws(), token: api.operator_token("publisher").await? };
    let publisher = peer::connect(&publ, &room, true, rates.len(), epoch, stop.clone()).await?;
    let mut v = sweep_groups(std::slice::from_ref(&publisher.tx), groups, rates, epoch, stop, Probe::of(a)).await?;
    let _ = publisher.done.await;
    let remote = v.remove(1);
    Ok((v.remove(0), remote))
}

/// 1 room, `subscribers` receivers, 1 publisher.
/// `redis_port`: the node's Redis, whose CPU is measured too.
pub async fn fanout(
    node: &Proc,
    hub: bool,
    subscribers: usize,
    rates: &[u64],
    redis_port: Option<u16>,
) -> anyhow::Result<Sweep> {
    let epoch = Instant::now();
    let stop = CancellationToken::new();
    let (room, sub_target, pub_target) = if hub {
        let api = Api::new(node);
        let room = api.conversation().await?;
        let subs = Target::Hub { ws_base: node.ws(), token: api.operator_token("subscriber").await? };
        let publ = Target::Hub { ws_base: node.ws(), token: api.operator_token("publisher").await? };
        (room, subs, publ)
    } else {
        let t = Target::Baseline { ws_base: node.ws() };
        ("fanout".to_string(), t.clone(), t)
    };
    let mut receivers = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        receivers.push(peer::connect(&sub_target, &room, false, rates.len(), epoch, stop.clone()).await?);
    }
    let publisher = peer::connect(&pub_target, &room, true, rates.len(), epoch, stop.clone()).await?;
    let probe = redis_port.map_or(Probe::of(node), |p| Probe::of(node).with_redis(p));
    let r = sweep(std::slice::from_ref(&publisher.tx), receivers, rates, subscribers as u64, epoch, stop, probe).await;
    let _ = publisher.done.await;
    r
}

/// How the hub's `rooms` peers authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Auth {
    /// Each connection is its own webchat participant with its own room-scoped token (as real
    /// deployments run; the default).
    Scoped,
    /// Two operator tokens for every room (joins as a participant on the first send).
    Operator,
}

/// `rooms` rooms of two peers; each peer both writes and reads (1:1 chats). `redis_port`: the
/// node's Redis, whose CPU is measured too.
pub async fn rooms(
    node: &Proc,
    hub: bool,
    rooms: usize,
    rates: &[u64],
    auth: Auth,
    redis_port: Option<u16>,
) -> anyhow::Result<Sweep> {
    let epoch = Instant::now();
    let stop = CancellationToken::new();
    let mut peers = Vec::with_capacity(rooms * 2);
    let api = hub.then(|| Api::new(node));
    let operators = match (&api, auth) {
        (Some(api), Auth::Operator) => Some((api.operator_token("peer-a").await?, api.operator_token("peer-b").await?)),
        _ => None,
    };
    for r in 0..rooms {
        let Some(api) = &api else {
            let t = Target::Baseline { ws_base: node.ws() };
            let room = format!("room-{r}");
            peers.push(peer::connect(&t, &room, false, rates.len(), epoch, stop.clone()).await?);
            peers.push(peer::connect(&t, &room, false, rates.len(), epoch, stop.clone()).await?);
            continue;
        };
        let room = api.conversation().await?;
        let (a, b) = match &operators {
            Some((a, b)) => (a.clone(), b.clone()),
            None => (
                api.participant_token(&room, &format!("a-{r}")).await?,
                api.participant_token(&room, &format!("b-{r}")).await?,
            ),
        };
        for token in [a, b] {
            let t = Target::Hub { ws_base: node.ws(), token };
            peers.push(peer::connect(&t, &room, false, rates.len(), epoch, stop.clone()).await?);
        }
    }
    // Alternate rooms first, then sides, so consecutive sends hit different rooms.
    let senders: Vec<_> = (0..2).flat_map(|side| peers.iter().skip(side).step_by(2).map(|p| p.tx.clone())).collect();
    let probe = redis_port.map_or(Probe::of(node), |p| Probe::of(node).with_redis(p));
    sweep(&senders, peers, rates, 2, epoch, stop, probe).await
}

#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub connections: usize,
    pub rss_before_mib: f64,
    pub rss_after_mib: f64,
    pub bytes_per_connection: f64,
    /// Growth per connection between `from` connections and all of them (the slope: start-up
    /// allocations and arena growth of the first connections left out); `None` when `from` is 0.
    pub slope_bytes_per_connection: Option<f64>,
    pub from: usize,
}

/// `n` idle, authenticated, subscribed connections; server RSS growth per connection. On the
/// hub every connection is its own webchat participant with its own room-scoped token, two per
/// room (1:1 chats, as deployments hold them); the baseline gets the same rooms of two.
pub async fn idle(node: &Proc, hub: bool, n: usize) -> anyhow::Result<Idle> {
    idle_from(node, hub, false, 0, n, || node.rss_bytes()).await
}

/// As `idle`, also reading RSS (through `rss`) once `from` connections are held. `one_room`
/// holds the earlier shape instead: every connection in one room with one operator token.
pub async fn idle_from(
    node: &Proc,
    hub: bool,
    one_room: bool,
    from: usize,
    n: usize,
    rss: impl Fn() -> u64,
) -> anyhow::Result<Idle> {
    use futures_util::{StreamExt, TryStreamExt};
    let epoch = Instant::now();
    let stop = CancellationToken::new();
    let pairs = n.div_ceil(2);
    // (room, token) per connection; the setup runs 16 requests deep before anything is measured.
    let targets: Vec<(String, Target)> = if hub && one_room {
        let api = Api::new(node);
        let (token, room) = (api.operator_token("idle").await?, api.conversation().await?);
        vec![(room, Target::Hub { ws_base: node.ws(), token }); n]
    } else if hub {
        let api = &Api::new(node);
        let rooms: Vec<Vec<(String, Target)>> = futures_util::stream::iter(0..pairs)
            .map(|r| async move {
                let room = api.conversation().await?;
                let mut v = Vec::with_capacity(2);
                for side in ["a", "b"] {
                    let token = api.participant_token(&room, &format!("idle-{side}-{r}")).await?;
                    v.push((room.clone(), Target::Hub { ws_base: node.ws(), token }));
                }
                anyhow::Ok(v)
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        rooms.into_iter().flatten().take(n).collect()
    } else {
        (0..n).map(|i| (format!("idle-{}", i / 2), Target::Baseline { ws_base: node.ws() })).collect()
    };
    let before = rss();
    let mut at_from = None;
    let mut peers = Vec::with_capacity(n);
    for (i, (room, target)) in targets.iter().enumerate() {
        if i == from && from > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            at_from = Some(rss());
        }
        peers.push(peer::connect(target, room, false, 1, epoch, stop.clone()).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss();
    stop.cancel();
    for p in peers {
        let _ = p.done.await;
    }
    Ok(Idle {
        connections: n,
        rss_before_mib: before as f64 / 1048576.0,
        rss_after_mib: after as f64 / 1048576.0,
        bytes_per_connection: after.saturating_sub(before) as f64 / n as f64,
        slope_bytes_per_connection: at_from.map(|a| after.saturating_sub(a) as f64 / (n - from) as f64),
        from,
    })
}

pub use crate::ingest::ingest;

/// Starts a fresh node for a scenario (memory backend unless `redis` is given).
pub async fn node(redis: Option<&str>) -> anyhow::Result<Proc> {
    servers::hub(redis).await
}
