//! Finding — and, when missing, installing — the outside programs some tests need.
//!
//! The test command (`cargo test`) must work on a fresh Debian machine: a program that is
//! missing is installed with `apt-get` when the tests run as root, otherwise the test fails
//! with the command to run. Never a silent skip. One install per test process (tests in a
//! binary run in parallel; `apt-get` must not).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

static APT: Mutex<()> = Mutex::new(());

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// The path of `binary`, installing Debian package `package` first if it is not on PATH.
pub fn ensure(binary: &str, package: &str) -> PathBuf {
    if let Some(p) = on_path(binary) {
        return p;
    }
    let _guard = APT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = on_path(binary) {
        return p;
    }
    apt_install_locked(package, &format!("`{binary}` is not on PATH"));
    on_path(binary).unwrap_or_else(|| panic!("apt-get installed {package} but `{binary}` is still not on PATH"))
}

/// Installs Debian package `package` (for what is not a binary on PATH, e.g. `python3-venv`).
pub fn apt_install(package: &str, why: &str) {
    let _guard = APT.lock().unwrap_or_else(|p| p.into_inner());
    apt_install_locked(package, why);
}

fn apt_install_locked(package: &str, why: &str) {
    assert!(
        is_root(),
        "{why} and these tests are not running as root: run \
         `sudo apt-get update && sudo apt-get install -y {package}` first"
    );
    eprintln!("tests: installing {package} with apt-get");
    // Another apt-get (a second test process, or the system's own) may hold dpkg's lock: wait
    // for it rather than fail.
    for args in [vec!["update"], vec!["install", "-y", "--no-install-recommends", package]] {
        let ok = Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        assert!(matches!(ok, Ok(s) if s.success()), "apt-get {args:?} failed");
    }
}
