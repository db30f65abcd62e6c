//! The JS client (`clients/js`, `@switchboard/client`) against live servers, through node's own
//! test runner (`node --test`).
//!
//! Redis backend: a private `redis-server` and two `switchboard` processes on it — node A, which
//! the scenarios may stop (SIGKILL) and start again on the same port through a control channel
//! (a TCP port on 127.0.0.1: a line `stop` or `start`, answered `ok` once done), and node B,
//! always up, through which messages are written while A is down. Runs every unit and live
//! test file (`test/unit`, `test/live`): resume across a restart, lost acks, duplicates, token
//! refresh, history paging, typing and read, packaging.
//!
//! Memory backend: the in-process server, and every live file but the restart scenario (a
//! memory node keeps nothing across a restart: there is nothing to resume).
//!
//! Both also run `test/media` (an upload through the client, sent as `medias: [{media_id}]`).
//!
//! `npm ci` runs in clients/js when its node_modules are missing (the `ws` package: Node 20
//! has no global WebSocket; `typescript` checks the declarations); no node is a failure with
//! what to install, never a skip.

use crate::common::redis::{Node, RedisServer};
use crate::common::{KEY_A, TestServer, test_config};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// The whole node run; the files' own waits are shorter.
const TIMEOUT: Duration = Duration::from_secs(240);

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/js")
}

/// `npm ci` in clients/js when its dev packages (`ws`, `typescript`) are missing; one at a time
/// per test process.
fn ensure_node_modules() {
    static NPM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let version = Command::new("node").arg("--version").output();
    let version = version.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let major: u32 = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    assert!(major >= 20, "Node.js 20 or later (with npm) is needed for the JS client tests; found `{version}`");
    let _guard = NPM.lock().unwrap_or_else(|p| p.into_inner());
    let installed = ["ws", "typescript"].iter().all(|p| dir().join(format!("node_modules/{p}/package.json")).exists());
    if installed {
        return;
    }
    eprintln!("js_client: running `npm ci` in {}", dir().display());
    let out = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(dir()).output().expect("run npm");
    assert!(
        out.status.success(),
        "npm ci in clients/js failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `*.test.js` files of `clients/js/test/<sub>`, sorted, relative to clients/js.
fn test_files(sub: &str, except: &[&str]) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir().join("test").join(sub))
        .expect("clients/js/test")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| n.ends_with(".test.js") && !except.contains(&n.as_str()))
        .map(|n| format!("test/{sub}/{n}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test files in clients/js/test/{sub}");
    files
}

/// Runs `node --test files` with `env`; panics with its output (and `log()`) unless it passed.
async fn node_test(files: &[String], env: &[(&str, String)], log: impl Fn() -> String) {
    let mut cmd = tokio::process::Command::new("node");
    // One file at a time: the restart scenario stops node A, which the other files use too.
    cmd.args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(files)
        .current_dir(dir())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("node --test did not finish within {TIMEOUT:?}"))
        .expect("run node");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "node --test failed ({}):\n{text}\nserver log:\n{}", out.status, log());
    assert!(text.contains("fail 0") && text.contains("skipped 0"), "unexpected test summary:\n{text}");
}

/// Serves `stop`/`start` for node A until the returned task is dropped.
async fn control(node: std::sync::Arc<Mutex<Node>>) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind control port");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let (rd, mut wr) = sock.into_split();
            let mut line = String::new();
            if BufReader::new(rd).read_line(&mut line).await.is_err() {
                continue;
            }
            let answer = match line.trim() {
                "stop" => {
                    node.lock().await.kill();
                    "ok\n"
                }
                "start" => {
                    node.lock().await.restart().await;
                    "ok\n"
                }
                _ => "unknown command\n",
            };
            let _ = wr.write_all(answer.as_bytes()).await;
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_on_redis_resumes_across_a_restart_and_passes_its_suite() {
    tokio::task::spawn_blocking(ensure_node_modules).await.unwrap();
    let redis = RedisServer::start().await;
    let url = redis.url();
    let (a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));
    let (url_a, url_b) = (a.url(""), b.url(""));
    let a = std::sync::Arc::new(Mutex::new(a));
    let (port, task) = control(a.clone()).await;
    let mut files = test_files("unit", &[]);
    files.extend(test_files("live", &[]));
    files.extend(test_files("media", &[]));
    let env =
        [("SB_URL_A", url_a), ("SB_URL_B", url_b), ("SB_KEY", KEY_A.to_string()), ("SB_CONTROL", port.to_string())];
    let log_a = a.clone();
    node_test(&files, &env, move || log_a.try_lock().map(|n| n.log()).unwrap_or_default()).await;
    task.abort();
    drop((b, redis));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_on_memory_passes_its_live_suite() {
    tokio::task::spawn_blocking(ensure_node_modules).await.unwrap();
    let server = TestServer::start_with(test_config()).await;
    let mut files = test_files("live", &["resume.test.js"]);
    files.extend(test_files("media", &[]));
    let env = [("SB_URL_A", server.url("")), ("SB_URL_B", server.url("")), ("SB_KEY", KEY_A.to_string())];
    node_test(&files, &env, String::new).await;
    server.stop().await;
}
