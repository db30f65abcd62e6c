//! The targets table at the top of the report: issue 18's goals, each a ratio to the baseline
//! measured in the same run where the issue states one, checked off.
//!
//! Owns which figure answers which goal; the figures themselves are the scenarios'. A goal
//! whose scenario did not run (`--no-redis`, `--bigroom 0`) has no row.

use crate::report::{Report, mark, ratio};
use crate::scenarios::{StepResult, Sweep};
use std::fmt::Write;

/// The step of `s` offered at `rate` msg/s.
fn at(s: &Option<Sweep>, rate: u64) -> Option<&StepResult> {
    s.as_ref()?.steps.iter().find(|st| st.rate == rate)
}

fn us(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1} µs"))
}

pub fn table(r: &Report, o: &mut String) {
    let _ = writeln!(o, "| target | hub | baseline | ratio | goal | met |");
    let _ = writeln!(o, "|---|---:|---:|---:|---|:---:|");
    let mut row = |name: String, hub: String, base: String, ratio: String, goal: &str, met: bool| {
        let _ = writeln!(o, "| {name} | {hub} | {base} | {ratio} | {goal} | {} |", mark(met));
    };
    if let (Some(h), Some(b)) = (at(&r.rooms_hub, 20_000), at(&r.rooms_base, 20_000)) {
        row(
            "rooms (memory) p99 at 20,000 msg/s".into(),
            format!("{:.1} ms", h.p99_ms),
            format!("{:.1} ms", b.p99_ms),
            ratio(h.p99_ms, b.p99_ms),
            "kept up, ≤ 5 ms",
            h.kept_up && h.p99_ms <= 5.0,
        );
        let (hc, bc) = (h.server_cpu_us, b.server_cpu_us);
        row(
            "rooms (memory) server CPU per message at 20,000 msg/s".into(),
            us(hc),
            us(bc),
            hc.zip(bc).map_or("–".into(), |(h, b)| ratio(h, b)),
            "≤ 1.5×",
            hc.zip(bc).is_some_and(|(h, b)| h <= 1.5 * b),
        );
    }
    if let Some(h) = at(&r.rooms_redis, 20_000) {
        let base = at(&r.rooms_base, 20_000).map_or("–".into(), |b| format!("{:.1} ms", b.p99_ms));
        row(
            "rooms (Redis) at 20,000 msg/s, p99".into(),
            format!("{:.1} ms", h.p99_ms),
            base,
            "–".into(),
            "kept up",
            h.kept_up,
        );
    }
    if let Some(h) = at(&r.rooms_redis, 10_000) {
        let b = at(&r.rooms_base, 10_000);
        row(
            "rooms (Redis) p99 at 10,000 msg/s".into(),
            format!("{:.1} ms", h.p99_ms),
            b.map_or("–".into(), |b| format!("{:.1} ms", b.p99_ms)),
            b.map_or("–".into(), |b| ratio(h.p99_ms, b.p99_ms)),
            "≤ 20 ms",
            h.kept_up && h.p99_ms <= 20.0,
        );
    }
    if let Some(v) = r.redis_us_per_message {
        row(
            "Redis CPU per message (rooms, `INFO cpu`)".into(),
            us(Some(v)),
            "–".into(),
            "–".into(),
            "≤ 25 µs",
            v <= 25.0,
        );
    }
    for (name, hub, rate, goal, limit) in
        [("fanout (memory)", &r.fanout_hub, 300, "≤ 1.5×", 1.5), ("fanout (Redis)", &r.fanout_redis, 100, "≤ 2×", 2.0)]
    {
        if let (Some(h), Some(b)) = (at(hub, rate), at(&r.fanout_base, rate)) {
            row(
                format!("{name} p99 at {rate} msg/s, 1,000 subscribers"),
                format!("{:.1} ms", h.p99_ms),
                format!("{:.1} ms", b.p99_ms),
                ratio(h.p99_ms, b.p99_ms),
                goal,
                h.kept_up && h.p99_ms <= limit * b.p99_ms,
            );
        }
    }
    if let Some(b) = &r.bigroom {
        let st = &b.sweep.steps[0];
        row(
            format!("bigroom: {} members joining within 10 s, then {} msg/s", b.members, st.rate),
            format!("{} held, {} failed, p99 {:.1} ms", b.members - b.failed_joins, b.failed_joins, st.p99_ms),
            "–".into(),
            "–".into(),
            "all held, no 4008, kept up",
            b.failed_joins == 0 && st.kept_up,
        );
    }
    if let (Some(h), Some(b)) = (&r.idle_hub, &r.idle_base) {
        let kib = h.bytes_per_connection / 1024.0;
        row(
            format!("idle RSS per subscribed connection ({} held)", h.connections),
            format!("{kib:.1} KiB"),
            format!("{:.1} KiB", b.bytes_per_connection / 1024.0),
            ratio(h.bytes_per_connection, b.bytes_per_connection),
            "≤ 8 KiB",
            kib <= 8.0,
        );
    }
    if let (Some(h), Some(b)) = (&r.burst_hub, &r.burst_base) {
        row(
            format!("{} connections opened at once, until all subscribed", h.connections),
            format!("{:.2} s ({} failed)", h.secs, h.failed),
            format!("{:.2} s", b.secs),
            ratio(h.secs, b.secs),
            "≤ 0.3 s",
            h.failed == 0 && h.secs <= 0.3,
        );
    }
    for (name, goal, i) in [("memory", 10_000.0, &r.ingest_memory), ("Redis", 10_000.0, &r.ingest_redis)] {
        if let Some(i) = i {
            row(
                format!("ingest signed webhooks/s ({name}), p99 {:.1} ms", i.p99_ms),
                format!("{:.0}", i.per_sec),
                "–".into(),
                "–".into(),
                "≥ 10,000/s",
                i.per_sec >= goal,
            );
        }
    }
}
