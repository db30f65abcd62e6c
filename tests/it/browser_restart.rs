//! The chat page survives a server restart on the Redis backend and fills the gap, in
//! Debian's headless Chromium.
//!
//! Starts a private `redis-server` and two `switchboard` processes on it (nodes A and B), then
//! runs `node tests/browser/restart.mjs <A> <B> <api key>` (see that file for the scenario)
//! and acts on node A when the script asks: `@kill` → SIGKILL, answered `killed`; `@restart`
//! → the same binary on the same port, answered `restarted`. The script checks what the pages
//! show; this side fails when it fails, with the script's output and node A's log. Chromium
//! and the node packages are installed when missing (`common::browser`); never a skip.

use crate::common;
use crate::common::KEY_A;
use crate::common::redis::{Node, RedisServer};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The whole run, browser start to the last check; restart.mjs has its own, shorter, deadline.
const TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_page_survives_a_node_restart_and_fills_the_gap() {
    tokio::task::spawn_blocking(common::browser::ensure).await.unwrap();
    let redis = RedisServer::start().await;
    let url = redis.url();
    let (mut a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));

    let mut child = tokio::process::Command::new("node")
        .arg(common::browser::dir().join("restart.mjs"))
        .arg(a.url(""))
        .arg(b.url(""))
        .arg(KEY_A)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run node");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut err = child.stderr.take().expect("stderr");
    let mut asked = Vec::new();
    let drive = async {
        while let Some(line) = out.next_line().await.expect("read the script's output") {
            println!("{line}");
            let answer = match line.trim() {
                "@kill" => {
                    a.kill();
                    "killed\n"
                }
                "@restart" => {
                    a.restart().await;
                    "restarted\n"
                }
                _ => continue,
            };
            asked.push(line.trim().to_string());
            stdin.write_all(answer.as_bytes()).await.expect("answer the script");
        }
        child.wait().await.expect("wait for node")
    };
    let status = tokio::time::timeout(TIMEOUT, drive)
        .await
        .unwrap_or_else(|_| panic!("restart.mjs did not finish within {TIMEOUT:?}"));
    let mut stderr = String::new();
    let _ = tokio::io::AsyncReadExt::read_to_string(&mut err, &mut stderr).await;
    eprintln!("{stderr}");
    assert!(
        status.success(),
        "restart.mjs failed ({status}); output above, screenshots in target/screenshots/; node A's log:\n{}",
        a.log()
    );
    assert_eq!(asked, ["@kill", "@restart"], "the script must have gone through the kill and the restart");
}
