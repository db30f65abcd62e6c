//! What the browser tests (`tests/browser.rs`, `tests/browser_restart.rs`) need before they
//! can drive Chromium: Debian's `chromium` (installed through `provision`) and the node
//! packages of `tests/browser` (playwright-core and axe-core, `npm ci`). Anything missing that cannot
//! be installed fails the test with what to do; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/browser`: the scenarios (`*.mjs`) and their package.json.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn run(cmd: &str, args: &[&str], dir: Option<&Path>) -> Result<(), String> {
    let mut c = Command::new(cmd);
    c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let out = c.output().map_err(|e| format!("cannot run `{cmd}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{cmd} {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `npm ci` in tests/browser when its node_modules are missing (playwright-core, which
/// downloads no browser, and axe-core).
fn ensure_node_modules(dir: &Path) {
    assert!(
        run("node", &["--version"], None).is_ok(),
        "`node` (20 or later) is needed to drive the browser: install Node.js and npm"
    );
    // Both browser tests call this at once on a fresh clone; a second `npm ci` would delete the
    // node_modules the first one is filling (as `provision`'s apt-get lock, one per process).
    static NPM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = NPM.lock().unwrap_or_else(|p| p.into_inner());
    if dir.join("node_modules/playwright-core/package.json").exists()
        && dir.join("node_modules/axe-core/axe.min.js").exists()
    {
        return;
    }
    eprintln!("browser test: running `npm ci` in {}", dir.display());
    run("npm", &["ci", "--no-audit", "--no-fund"], Some(dir))
        .unwrap_or_else(|e| panic!("cannot install the browser test's node packages: {e}"));
}

/// Chromium and the node packages, installed when missing (blocking: call it from
/// `spawn_blocking`).
pub fn ensure() {
    super::provision::ensure("chromium", "chromium");
    ensure_node_modules(&dir());
}

/// The Twilio stub the browser scenarios send SMS replies to (shared with the channel suites).
pub use super::channels::twilio_stub;

/// Runs `node tests/browser/<script> <args…>` from the repository root within `limit` (the
/// script has its own, shorter, deadline), prints what it wrote, and returns whether it passed
/// with the failure message to assert on.
pub async fn run_scenario(script: &str, args: &[&str], limit: std::time::Duration) -> (bool, String) {
    let child = tokio::process::Command::new("node")
        .arg(dir().join(script))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(limit, child)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {limit:?}"))
        .expect("cannot run node");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    // The failing step goes into the assertion message itself: a CI log may keep only the panic.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = stderr
        .lines()
        .filter(|l| l.contains("FAILED") || l.starts_with("Error") || l.contains("Error:"))
        .take(6)
        .collect::<Vec<_>>()
        .join("\n");
    (
        out.status.success(),
        format!("{script} failed ({}): {reason}\n(output above, screenshots in target/screenshots/)", out.status),
    )
}
