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
    tokio::task::spawn_blocking(common::browser::ensure).await.unwrap();
    let server = common::TestServer::start().await;
    let (passed, failure) =
        common::browser::run_scenario("widget.mjs", &[&server.url(""), common::KEY_A], TIMEOUT).await;
    server.stop().await;
    println!("widget browser test: {:.1}s in all", started.elapsed().as_secs_f64());
    assert!(passed, "{failure}");
}
