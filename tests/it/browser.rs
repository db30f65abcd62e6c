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
use std::time::{Duration, Instant};

/// What e2e.mjs types in the page as the operator's SMS reply (to the number below).
const SMS_REPLY: &str = "Sorry Sam, we are resending it today.";
const SMS_PEER: &str = "+14155550100";
/// The whole node run, browser start to screenshots; e2e.mjs has its own, shorter, deadline.
const E2E_TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_page_end_to_end_in_chromium() {
    let started = Instant::now();
    tokio::task::spawn_blocking(common::browser::ensure).await.unwrap();

    // A replay window smaller than the seeded room, so the end user's page must page history
    // over REST (see e2e.mjs).
    let mut config = common::test_config();
    config.ws.max_recovery = 30;
    let server = common::TestServer::start_with(config).await;
    let base = server.url("");
    let twilio = common::browser::twilio_stub().await;
    let (passed, failure) =
        common::browser::run_scenario("e2e.mjs", &[&base, common::KEY_A, &twilio.url], E2E_TIMEOUT).await;
    server.stop().await;
    println!("browser test: {:.1}s in all", started.elapsed().as_secs_f64());
    assert!(passed, "{failure}");
    let sent = twilio.requests();
    assert!(
        sent.iter().any(|r| r.path.ends_with("/Messages.json")
            && r.form_field("Body").as_deref() == Some(SMS_REPLY)
            && r.form_field("To").as_deref() == Some(SMS_PEER)),
        "the operator's reply never reached the stub Twilio API; it got: {:?}",
        sent.iter().map(|r| (r.path.clone(), r.form())).collect::<Vec<_>>()
    );
}
