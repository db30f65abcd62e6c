//! CPU probes read around every step of a sweep, so a figure is the cost per message of the
//! server under test (and of Redis), not only its latency.
//!
//! Owns reading CPU time: a process's `utime + stime` from `/proc/PID/stat`, and Redis's
//! `used_cpu_user + used_cpu_sys` from `INFO`. It does not own which process is measured: the
//! scenario builds the probe from the servers it started. A server this run did not start
//! (`--url`) has no pid, so its CPU is not reported.

use crate::servers::Proc;
use std::collections::BTreeMap;

/// What to read around each step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Probe {
    /// The server under test.
    pub pid: Option<u32>,
    /// A `redis-server` whose CPU counts too.
    pub redis_port: Option<u16>,
    /// The kernel's clock ticks per second, read once.
    hz: f64,
}

/// CPU seconds so far, per probed process, and Redis's command calls so far.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub server: Option<f64>,
    pub redis: Option<f64>,
    pub redis_calls: BTreeMap<String, u64>,
}

impl Probe {
    /// The server `p` (no pid for an external one).
    pub fn of(p: &Proc) -> Probe {
        Probe { pid: p.child.as_ref().map(|c| c.id()), redis_port: None, hz: clock_ticks() }
    }

    /// `self` with Redis on `port` measured too.
    pub fn with_redis(mut self, port: u16) -> Probe {
        self.redis_port = Some(port);
        self
    }

    pub fn read(&self) -> Reading {
        let (redis, redis_calls) = self.redis_port.map(redis_info).unwrap_or_default();
        Reading { server: self.pid.and_then(|pid| cpu_secs(pid, self.hz)), redis, redis_calls }
    }
}

/// Redis commands per message between two readings, most frequent first (`INFO
/// commandstats` `calls`; a script's inner commands are counted too, under their own names).
pub fn calls_per_message(before: &Reading, after: &Reading, messages: u64) -> Vec<(String, f64)> {
    if messages == 0 {
        return Vec::new();
    }
    let mut v: Vec<(String, f64)> = after
        .redis_calls
        .iter()
        .map(|(k, a)| (k.clone(), a.saturating_sub(*before.redis_calls.get(k).unwrap_or(&0)) as f64 / messages as f64))
        .filter(|(_, n)| *n >= 0.005)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// Redis's CPU seconds so far (`used_cpu_user + used_cpu_sys`: commands and network I/O) and
/// `calls` per command (`INFO commandstats`), from one `INFO` of the Redis on `port`; nothing
/// when it is unreachable.
fn redis_info(port: u16) -> (Option<f64>, BTreeMap<String, u64>) {
    let out = std::process::Command::new("redis-cli").args(["-p", &port.to_string(), "INFO", "all"]).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let (mut cpu, mut calls) = (None, BTreeMap::new());
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("used_cpu_user:").or_else(|| l.strip_prefix("used_cpu_sys:")) {
            *cpu.get_or_insert(0.0) += v.trim().parse::<f64>().unwrap_or(0.0);
        } else if let Some((name, rest)) = l.strip_prefix("cmdstat_").and_then(|r| r.split_once(':'))
            && let Some(n) = rest.split(',').find_map(|kv| kv.strip_prefix("calls=")).and_then(|v| v.parse().ok())
        {
            calls.insert(name.to_string(), n);
        }
    }
    (cpu, calls)
}

/// µs of CPU per message between two readings.
pub fn per_message(before: Option<f64>, after: Option<f64>, messages: u64) -> Option<f64> {
    let (b, a) = (before?, after?);
    (messages > 0).then(|| (a - b).max(0.0) * 1e6 / messages as f64)
}

/// `utime + stime` of `pid` in seconds (all threads), from `/proc/PID/stat`; `hz`: clock ticks
/// per second (`clock_ticks`).
pub fn cpu_secs(pid: u32, hz: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / hz)
}

/// The kernel's `USER_HZ` (`getconf CLK_TCK`; 100 on Linux x86-64 and arm64).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_cpu_time_and_it_grows_with_work() {
        let me = std::process::id();
        let hz = clock_ticks();
        let a = cpu_secs(me, hz).expect("own /proc stat");
        // Spin until the reading moves (it must, long before the wall-clock guard).
        let (mut x, guard) = (0u64, std::time::Instant::now());
        let mut b = a;
        while b - a < 0.05 && guard.elapsed().as_secs() < 30 {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            b = cpu_secs(me, hz).expect("own /proc stat");
        }
        assert!(b - a >= 0.05, "spinning shows as CPU time: {a} -> {b}");
    }

    #[test]
    fn per_message_needs_both_readings_and_messages() {
        assert_eq!(per_message(Some(1.0), Some(1.5), 1000), Some(500.0));
        assert_eq!(per_message(None, Some(1.5), 1000), None);
        assert_eq!(per_message(Some(1.0), Some(1.5), 0), None);
    }
}
