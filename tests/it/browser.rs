//! The browser chat page (`static/`), end to end in Debian's headless Chromium.
//!
//! Starts the server in-process and a stub Twilio API, runs
//! `node tests/browser/e2e.mjs <base url> <api key> <stub url>` (playwright-core driving
//! `/usr/bin/chromium`; see that file for the scenarios), then checks that the operator's SMS
//! reply typed in the page reached the stub provider. What the run needs is installed when
//! missing (`common::browser`): Chromium with apt-get (when running as root) and the node
//! packages with `npm ci`. Anything that cannot be installed fails the test with a message
//! saying what to do; it never skips. The restart scenario is `tests/browser_restart.rs`.

use crate::common;
use crate::common::stub::{Answer, Stub};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What e2e.mjs types in the page as the operator's SMS reply (to the number below).
const SMS_REPLY: &str = "Sorry Sam, we are resending it today.";
const SMS_PEER: &str = "+14155550100";
/// The whole node run, browser start to screenshots; e2e.mjs has its own, shorter, deadline.
const E2E_TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_page_end_to_end_in_chromium() {
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = common::browser::dir();
    tokio::task::spawn_blocking(common::browser::ensure).await.unwrap();

    // A replay window smaller than the seeded room, so the end user's page must page history
    // over REST (see e2e.mjs).
    let mut config = common::test_config();
    config.ws.max_recovery = 30;
    let server = common::TestServer::start_with(config).await;
    let base = server.url("");
    // A Twilio Messages API that accepts every send, like the real one (201 + message resource).
    let fixture = std::fs::read_to_string(root.join("tests/fixtures/twilio_send_response.json")).unwrap();
    let twilio = Stub::start(move |req, i| {
        let body = req.form_field("Body").unwrap_or_default();
        Answer::status(201, &fixture.trim().replace("__SID__", &format!("SM{:032x}", i + 1)).replace("__BODY__", &body))
    })
    .await;
    let child = tokio::process::Command::new("node")
        .arg(dir.join("e2e.mjs"))
        .arg(&base)
        .arg(common::KEY_A)
        .arg(&twilio.url)
        .current_dir(&root)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(E2E_TIMEOUT, child)
        .await
        .unwrap_or_else(|_| panic!("e2e.mjs did not finish within {E2E_TIMEOUT:?}"))
        .expect("cannot run node");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    server.stop().await;
    println!("browser test: {:.1}s in all", started.elapsed().as_secs_f64());
    assert!(out.status.success(), "e2e.mjs failed ({}); output above, screenshots in target/screenshots/", out.status);
    let sent = twilio.requests();
    assert!(
        sent.iter().any(|r| r.path.ends_with("/Messages.json")
            && r.form_field("Body").as_deref() == Some(SMS_REPLY)
            && r.form_field("To").as_deref() == Some(SMS_PEER)),
        "the operator's reply never reached the stub Twilio API; it got: {:?}",
        sent.iter().map(|r| (r.path.clone(), r.form())).collect::<Vec<_>>()
    );
}
