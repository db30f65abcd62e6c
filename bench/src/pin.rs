//! CPU pinning, so a figure is the server's own cost: the server under test (and the baseline)
//! on CPU 0, this generator on CPU 1, through `taskset` (util-linux).
//!
//! Pinning is on unless `BENCH_NO_PIN` is set (not `SWITCHBOARD_…`: the server reads those as config); without `taskset`, or on a machine
//! with one CPU, nothing is pinned and the report says so.

use std::process::Command;

/// The CPU the servers run on.
pub const SERVER_CPU: &str = "0";
/// The CPU this generator runs on.
pub const GENERATOR_CPU: &str = "1";

/// The machine's online CPUs (`/proc/cpuinfo`), whatever this process's affinity: once the
/// generator has pinned itself, `available_parallelism` answers 1, and children inherit that
/// mask unless told otherwise.
pub fn cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
        .max(1)
}

/// Whether pinning applies on this machine.
pub fn enabled() -> bool {
    std::env::var_os("BENCH_NO_PIN").is_none()
        && cpus() >= 2
        && Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success())
}

/// `program` as a command free to run on every CPU (`redis-server`: not the server under test,
/// not the generator), rather than on the generator's CPU it would inherit.
pub fn floating_command(program: &str) -> Command {
    if enabled() {
        let mut c = Command::new("taskset");
        c.args(["-c", &format!("0-{}", cpus() - 1)]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// `program` as a command, started on the server CPU when pinning applies.
pub fn server_command(program: &std::path::Path) -> Command {
    if enabled() {
        let mut c = Command::new("taskset");
        c.args(["-c", SERVER_CPU]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Moves this process (every thread) to the generator CPU; returns whether it did.
pub fn pin_generator() -> bool {
    if !enabled() {
        return false;
    }
    let pid = std::process::id().to_string();
    Command::new("taskset").args(["-a", "-p", "-c", GENERATOR_CPU, &pid]).output().is_ok_and(|o| o.status.success())
}

/// How the run was placed, for the report.
pub fn describe() -> String {
    if enabled() {
        format!("server pinned to CPU {SERVER_CPU}, generator to CPU {GENERATOR_CPU}, redis-server on any (taskset)")
    } else {
        "not pinned".to_string()
    }
}
