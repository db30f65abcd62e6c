//! The website widget (`static/widget.js`) end to end in Debian's headless Chromium: embedded
//! in a page of another origin (a static server on 127.0.0.2 that `widget.mjs` starts), a
//! visitor chats with an operator both ways, a reload keeps the conversation, an identity-
//! verified visitor sees the same history on a second browser context and a forged hash is
//! refused. See `tests/browser/widget.mjs` for the scenarios. Chromium and the node packages
//! are installed when missing (`common::browser`); nothing skips.

use crate::common;
use std::time::{Duration, Instant};

/// The whole node run; widget.mjs has its own, shorter, deadline.
const TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_on_another_origin_in_chromium() {
    let started = Instant::now();
    let dir = common::browser::dir();
    tokio::task::spawn_blocking(common::browser::ensure).await.unwrap();
    let server = common::TestServer::start().await;
    let child = tokio::process::Command::new("node")
        .arg(dir.join("widget.mjs"))
        .arg(server.url(""))
        .arg(common::KEY_A)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(TIMEOUT, child)
        .await
        .unwrap_or_else(|_| panic!("widget.mjs did not finish within {TIMEOUT:?}"))
        .expect("cannot run node");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    server.stop().await;
    println!("widget browser test: {:.1}s in all", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "widget.mjs failed ({}); output above, screenshots in target/screenshots/",
        out.status
    );
}
