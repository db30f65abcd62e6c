//! `check-config` and `serve` against broken config files, through the real binary.

use std::time::Duration;

/// Runs the real binary with `args` and a config file holding `toml`; returns (exit code,
/// stderr). Fails if the process is still running after 20 s (i.e. it started serving).
fn run_binary(toml: Option<&str>, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.toml");
    if let Some(t) = toml {
        std::fs::write(&path, t).unwrap();
    }
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .arg("--config")
        .arg(&path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`switchboard {args:?}` did not exit: it started despite the config");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn check_config_lists_every_problem_and_serve_refuses_the_same_config() {
    let broken = r#"
[server]
listen = "nowhere"
[ws]
max_connections = 0
ping_interval_secs = 30
idle_timeout_secs = 10
allowed_origins = ["app.example.com", "https://ok.example.com"]
rate_per_sec = 5
rate_burst = 0
[limits]
max_webhook_body_bytes = 0
[metrics]
token = "short"
"#;
    let expected = [
        "server.listen",
        "ws.max_connections: must be greater than 0",
        "ws.idle_timeout_secs: must be greater than ws.ping_interval_secs",
        "ws.allowed_origins: `app.example.com`",
        "ws.rate_burst: must be at least 1",
        "limits.max_webhook_body_bytes: must be greater than 0",
        "metrics.token: use at least 16 characters",
    ];
    let (code, err) = run_binary(Some(broken), &["check-config"]);
    assert_eq!(code, 2, "{err}");
    for e in expected {
        assert!(err.contains(e), "missing `{e}` in:\n{err}");
    }
    assert!(!err.contains("https://ok.example.com"), "valid origins are not reported:\n{err}");
    assert_eq!(err.lines().filter(|l| l.trim_start().starts_with("- ")).count(), expected.len(), "{err}");

    let (code, serve_err) = run_binary(Some(broken), &["serve"]);
    assert_eq!(code, 2, "{serve_err}");
    assert_eq!(serve_err, err, "serve refuses with the same messages");
}

#[test]
fn check_config_explains_unknown_keys_bad_types_bad_toml_and_missing_files() {
    let cases: &[(Option<&str>, &str)] = &[
        (Some("[ws]\nmax_conections = 5\n"), "max_conections"),
        (Some("[ws]\nmax_connections = \"many\"\n"), "max_connections"),
        (Some("[ws\nmax_connections = 5\n"), "TOML"),
        (Some("[metrics]\ntoken = 12\n"), "token"),
        (None, "does not exist"),
    ];
    for (toml, needle) in cases {
        let (code, err) = run_binary(*toml, &["check-config"]);
        assert_eq!(code, 2, "{toml:?}: {err}");
        assert!(err.contains("invalid configuration"), "{toml:?}: {err}");
        assert!(err.contains(needle), "{toml:?}: expected `{needle}` in:\n{err}");
    }
    let good = "[ws]\nallowed_origins = [\"https://app.example.com\"]\n[metrics]\ntoken = \"0123456789abcdef\"\n";
    let (code, err) = run_binary(Some(good), &["check-config"]);
    assert_eq!(code, 0, "{err}");
    let production = include_str!("../../../config/production.example.toml");
    let (code, err) = run_binary(Some(production), &["check-config"]);
    assert_eq!(code, 0, "the production example is valid: {err}");
    let without_secret = production.replace("token_secret = \"CHANGE-ME", "token_secret = \"\" # \"");
    let (code, err) = run_binary(Some(&without_secret), &["check-config"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("auth.token_secret: required with store.backend"), "{err}");
    // Uploads on each node's own disk, with several nodes: refused unless declared shared.
    let local_media = production.replace("backend = \"s3\"", "backend = \"fs\"");
    let (code, err) = run_binary(Some(&local_media), &["check-config"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("media.shared = true"), "{err}");
    let shared = local_media.replace("backend = \"fs\"", "backend = \"fs\"\nshared = true");
    let (code, err) = run_binary(Some(&shared), &["check-config"]);
    assert_eq!(code, 0, "{err}");
}
