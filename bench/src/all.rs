//! `switchboard-bench all`: every scenario in one run, the baseline and the hub side by side,
//! written to `target/bench/results.{md,json}`.
//!
//! Owns the order of the scenarios and which servers each one gets (a fresh node per scenario,
//! so one's leftovers do not weigh on the next); the scenarios themselves live in their own
//! files.

use crate::{BURST, FANOUT_RATES, ROOM_RATES, bigroom, burst, hold, report, rooms_redis, scenarios, servers};
use std::time::Duration;

pub async fn all(
    subscribers: usize,
    rooms: usize,
    idle: usize,
    no_redis: bool,
    cluster_idle: usize,
    auth: scenarios::Auth,
    bigroom: usize,
) -> anyhow::Result<()> {
    let mut r = report::Report::new();
    eprintln!("fanout: {subscribers} subscribers, rates {FANOUT_RATES:?}");
    let base = servers::baseline().await?;
    r.fanout_base = Some(scenarios::fanout(&base, false, subscribers, FANOUT_RATES, None).await?);
    drop(base);
    let hub = scenarios::node(None).await?;
    r.fanout_hub = Some(scenarios::fanout(&hub, true, subscribers, FANOUT_RATES, None).await?);
    drop(hub);

    eprintln!("rooms: {rooms} rooms x 2, rates {ROOM_RATES:?}");
    let base = servers::baseline().await?;
    r.rooms_base = Some(scenarios::rooms(&base, false, rooms, ROOM_RATES, auth, None).await?);
    drop(base);
    let hub = scenarios::node(None).await?;
    r.rooms_hub = Some(scenarios::rooms(&hub, true, rooms, ROOM_RATES, auth, None).await?);
    drop(hub);
    if !no_redis {
        eprintln!("rooms (redis)");
        let (sweep, us) = rooms_redis(rooms, auth, ROOM_RATES).await?;
        r.rooms_redis = Some(sweep);
        r.redis_us_per_message = Some(us);
    }
    if bigroom > 0 {
        eprintln!("bigroom: {bigroom} members");
        let hub = scenarios::node(None).await?;
        r.bigroom = Some(bigroom::bigroom(&hub, bigroom, Duration::from_secs(10), 20).await?);
        drop(hub);
    }

    eprintln!("idle: {idle} connections");
    let base = servers::baseline().await?;
    r.idle_base = Some(scenarios::idle(&base, false, idle).await?);
    drop(base);
    let hub = scenarios::node(None).await?;
    r.idle_hub = Some(scenarios::idle(&hub, true, idle).await?);
    drop(hub);

    eprintln!("burst: {BURST} connections at once");
    let base = servers::baseline().await?;
    r.burst_base = Some(burst::burst(&base, false, BURST).await?);
    drop(base);
    let hub = scenarios::node(None).await?;
    r.burst_hub = Some(burst::burst(&hub, true, BURST).await?);
    drop(hub);

    eprintln!("ingest (memory)");
    let hub = scenarios::node(None).await?;
    r.ingest_memory = Some(scenarios::ingest(&hub, 32, Duration::from_secs(5), None).await?);
    drop(hub);

    if !no_redis {
        let redis = servers::redis().await?;
        let url = format!("redis://127.0.0.1:{}", redis.port);
        eprintln!("ingest (redis)");
        let hub = scenarios::node(Some(&url)).await?;
        r.ingest_redis = Some(scenarios::ingest(&hub, 32, Duration::from_secs(5), Some(redis.port)).await?);
        drop(hub);
        eprintln!("fanout (redis)");
        let hub = scenarios::node(Some(&url)).await?;
        r.fanout_redis = Some(scenarios::fanout(&hub, true, subscribers, FANOUT_RATES, Some(redis.port)).await?);
        drop(hub);
        eprintln!("cluster: two nodes on one redis");
        let (a, b) = (scenarios::node(Some(&url)).await?, scenarios::node(Some(&url)).await?);
        r.cluster = Some(scenarios::cluster(&a, &b, subscribers / 2, &[100]).await?);
        drop((a, b));
        if cluster_idle > 0 {
            eprintln!("idle-cluster: 3 nodes x {cluster_idle} connections");
            r.idle_cluster = Some(hold::cluster_idle(&url, 3, cluster_idle).await?);
        }
    }
    let problems = r.problems();
    let dir = std::path::Path::new("target/bench");
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("results.md"), r.markdown())?;
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&r)?)?;
    println!("{}", r.markdown());
    eprintln!("wrote target/bench/results.md and results.json");
    anyhow::ensure!(problems.is_empty(), "delivery errors: {}", problems.join("; "));
    Ok(())
}
