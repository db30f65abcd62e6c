//! The results: JSON for machines, a markdown table for README, hub figures as ratios to the
//! baseline measured in the same run, and the targets of issue 7 checked off.

use crate::ingest::Ingest;
use crate::scenarios::{Idle, Sweep};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: String,
    pub fanout_base: Option<Sweep>,
    pub fanout_hub: Option<Sweep>,
    pub fanout_redis: Option<Sweep>,
    pub rooms_base: Option<Sweep>,
    pub rooms_hub: Option<Sweep>,
    pub idle_base: Option<Idle>,
    pub idle_hub: Option<Idle>,
    pub ingest_memory: Option<Ingest>,
    pub ingest_redis: Option<Ingest>,
    /// (subscribers on the publisher's node, subscribers on the other node)
    pub cluster: Option<(Sweep, Sweep)>,
    pub idle_cluster: Option<crate::hold::IdleCluster>,
    /// How the processes were placed on CPUs (`crate::pin`).
    pub pinning: String,
    /// `rooms` on the Redis backend.
    pub rooms_redis: Option<Sweep>,
    /// Redis CPU per message in the Redis `rooms` run (µs, from `INFO cpu`).
    pub redis_us_per_message: Option<f64>,
    pub bigroom: Option<crate::bigroom::BigRoom>,
    pub burst_base: Option<crate::burst::Burst>,
    pub burst_hub: Option<crate::burst::Burst>,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = crate::pin::cpus();
    format!("{cores} cores, {cpu}")
}

pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}×", a / b) } else { "–".into() }
}

pub fn mark(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}

impl Report {
    pub fn new() -> Report {
        Report {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine: machine(),
            pinning: crate::pin::describe(),
            ..Default::default()
        }
    }

    /// Lost, duplicated or out-of-order deliveries anywhere.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let sweeps = [
            ("fanout baseline", &self.fanout_base),
            ("fanout hub", &self.fanout_hub),
            ("fanout redis", &self.fanout_redis),
            ("rooms baseline", &self.rooms_base),
            ("rooms hub", &self.rooms_hub),
            ("rooms hub+redis", &self.rooms_redis),
        ];
        let cluster = self.cluster.as_ref().map(|(a, b)| [("cluster local", a.clone()), ("cluster remote", b.clone())]);
        let mut all: Vec<(&str, Sweep)> =
            sweeps.iter().filter_map(|(n, s)| s.as_ref().map(|s| (*n, s.clone()))).collect();
        all.extend(cluster.into_iter().flatten());
        for (name, i) in [("memory", &self.ingest_memory), ("redis", &self.ingest_redis)] {
            let Some(i) = i else { continue };
            let accepted = i.requests - i.errors;
            if i.errors > 0 || i.stored != accepted {
                out.push(format!(
                    "ingest ({name}): {} of {} webhooks refused, {} accepted but {} messages stored",
                    i.errors, i.requests, accepted, i.stored
                ));
            }
        }
        if let Some(c) = &self.idle_cluster
            && c.received < c.connections
        {
            out.push(format!("idle-cluster: only {} of {} connections got the broadcast", c.received, c.connections));
        }
        for (name, s) in all {
            // The baseline drops members whose queue overflows by design; only the hub must be exact.
            if name.contains("baseline") {
                continue;
            }
            if s.lost + s.duplicated + s.out_of_order > 0 {
                out.push(format!(
                    "{name}: lost {} duplicated {} out-of-order {}",
                    s.lost, s.duplicated, s.out_of_order
                ));
            }
        }
        out
    }

    fn sweep_table(out: &mut String, title: &str, rows: &[(&str, &Option<Sweep>)]) {
        if rows.iter().all(|(_, s)| s.is_none()) {
            return;
        }
        let _ = writeln!(out, "\n**{title}** (deliveries/s, latency ms at each offered rate)\n");
        let _ = writeln!(
            out,
            "| server | rate msg/s | deliveries/s | p50 | p99 | max | kept up | server CPU µs/msg | Redis CPU µs/msg |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|:---:|---:|---:|");
        let us = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
        for (name, s) in rows {
            let Some(s) = s else { continue };
            for st in &s.steps {
                let _ = writeln!(
                    out,
                    "| {name} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
                    st.rate,
                    st.deliveries_per_sec,
                    st.p50_ms,
                    st.p99_ms,
                    st.max_ms,
                    mark(st.kept_up),
                    us(st.server_cpu_us),
                    us(st.redis_cpu_us)
                );
            }
        }
    }

    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "Run {} on {}; {}.\n", self.date, self.machine, self.pinning);
        crate::targets::table(self, &mut o);
        if self.fanout_hub.is_some() || self.idle_cluster.is_some() || self.cluster.is_some() {
            let _ = writeln!(o, "\nOther figures:\n");
            let _ = writeln!(o, "| figure | hub | baseline | ratio | goal | met |");
            let _ = writeln!(o, "|---|---:|---:|---:|---|:---:|");
        }
        if let (Some(h), Some(b)) = (&self.fanout_hub, &self.fanout_base) {
            let r = h.max_deliveries_per_sec / b.max_deliveries_per_sec.max(1.0);
            let _ = writeln!(
                o,
                "| fanout max deliveries/s | {:.0} | {:.0} | {} | ≥ 0.8× | {} |",
                h.max_deliveries_per_sec,
                b.max_deliveries_per_sec,
                ratio(h.max_deliveries_per_sec, b.max_deliveries_per_sec),
                mark(r >= 0.8)
            );
            let l = h.p99_at_half_ms / b.p99_at_half_ms.max(0.001);
            let _ = writeln!(
                o,
                "| fanout p99 ms at half max rate | {:.1} | {:.1} | {} | ≤ 2× | {} |",
                h.p99_at_half_ms,
                b.p99_at_half_ms,
                ratio(h.p99_at_half_ms, b.p99_at_half_ms),
                mark(l <= 2.0)
            );
        }
        if let Some(c) = &self.idle_cluster {
            let worst = c.kib_per_connection.iter().copied().fold(0.0, f64::max);
            let per: Vec<String> = c.kib_per_connection.iter().map(|k| format!("{k:.1}")).collect();
            let _ = writeln!(
                o,
                "| idle connections held: {} nodes × {} on one Redis, {} of {} got a broadcast (KiB/conn per node: {}) | {} | – | – | ≥ 50,000, ≤ 16 KiB | {} |",
                c.nodes,
                c.per_node,
                c.received,
                c.connections,
                per.join(" / "),
                c.connections,
                mark(c.connections >= 50_000 && c.received == c.connections && worst <= 16.0)
            );
        }
        if let Some((a, b)) = &self.cluster {
            let (pa, pb) = (a.steps[0].p99_ms, b.steps[0].p99_ms);
            let _ = writeln!(
                o,
                "| cluster added p99 ms (remote {pb:.1} − local {pa:.1}) | {:.1} | – | – | ≤ 5 ms | {} |",
                pb - pa,
                mark(pb - pa <= 5.0)
            );
        }
        Self::sweep_table(
            &mut o,
            "fanout: 1 room, 1 publisher",
            &[("baseline", &self.fanout_base), ("hub", &self.fanout_hub), ("hub+redis", &self.fanout_redis)],
        );
        Self::sweep_table(
            &mut o,
            "rooms: 1:1 chats",
            &[("baseline", &self.rooms_base), ("hub", &self.rooms_hub), ("hub+redis", &self.rooms_redis)],
        );
        if let Some(us) = self.redis_us_per_message {
            let _ =
                writeln!(o, "\nRedis CPU per message (rooms, Redis backend; `INFO cpu`): {us:.1} µs (goal ≤ 25 µs)");
        }
        let calls = |v: &[(String, f64)]| v.iter().map(|(c, n)| format!("{c} {n:.2}")).collect::<Vec<_>>().join(", ");
        if let Some(st) = self.rooms_redis.as_ref().and_then(|s| s.steps.first()) {
            let _ = writeln!(o, "\nRedis commands per message (rooms, {} msg/s): {}", st.rate, calls(&st.redis_calls));
        }
        for (name, i) in [("memory", &self.ingest_memory), ("Redis", &self.ingest_redis)] {
            let Some(i) = i else { continue };
            let us = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1} µs"));
            let _ = writeln!(
                o,
                "\nIngest ({name}): server CPU {} and Redis CPU {} per webhook{}",
                us(i.server_cpu_us),
                us(i.redis_cpu_us),
                if i.redis_calls.is_empty() {
                    String::new()
                } else {
                    format!("; Redis commands per webhook: {}", calls(&i.redis_calls))
                }
            );
        }
        if let Some(b) = &self.bigroom {
            let st = &b.sweep.steps[0];
            let _ = writeln!(
                o,
                "\n**bigroom**: {} members joined in {:.1} s ({} failed); at {} msg/s: {} of {} deliveries, p99 {:.1} ms, kept up {}",
                b.members,
                b.joined_in_secs,
                b.failed_joins,
                st.rate,
                st.delivered,
                st.expected,
                st.p99_ms,
                mark(st.kept_up && b.failed_joins == 0)
            );
        }
        let problems = self.problems();
        let _ = writeln!(
            o,
            "\nDelivery check (lost / duplicated / out of order): {}",
            if problems.is_empty() { "none".to_string() } else { problems.join("; ") }
        );
        o
    }
}
