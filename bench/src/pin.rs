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

/// Whether pinning applies on this machine.
pub fn enabled() -> bool {
    std::env::var_os("BENCH_NO_PIN").is_none()
        && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
        && Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success())
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
        format!("server pinned to CPU {SERVER_CPU}, generator to CPU {GENERATOR_CPU} (taskset)")
    } else {
        "not pinned".to_string()
    }
}
