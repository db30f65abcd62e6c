//! The agent inbox of issue 19 (`static/`), end to end in Debian's headless Chromium.
//!
//! Starts the server in-process and a stub Twilio API, runs
//! `node tests/browser/inbox.mjs <base url> <api key> <stub url>` (playwright-core driving
//! `/usr/bin/chromium`, axe-core for accessibility; see that file for the scenarios: agent
//! sign-in from an invite and with email and password, tabs, filters, search, the agent picker,
//! notes, canned responses, attachments, the title badge, unread counts across browsers, RTL,
//! phone size, sign-out), then checks what reached the stub SMS provider: the canned reply typed
//! in the SMS room went out, the private note typed there never did. What the run needs is
//! installed when missing (`common::browser`); it never skips. A second scenario,
//! `inbox_assign.mjs`, has an agent assign from the picker and checks desktop notifications.

use crate::common;
use std::time::{Duration, Instant};

/// What inbox.mjs sends in the SMS room: a private note, then a canned response.
const NOTE: &str = "Internal: customer is VIP, refund without asking.";
const REFUND: &str = "We have refunded your order; it shows on your card in 3 to 5 days.";
const SMS_PEER: &str = "+14155550111";
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_inbox_in_chromium() {
    let started = Instant::now();
    tokio::task::spawn_blocking(common::browser::ensure).await.unwrap();

    let server = common::TestServer::start_with(common::test_config()).await;
    let base = server.url("");
    let twilio = common::browser::twilio_stub().await;
    let (passed, failure) =
        common::browser::run_scenario("inbox.mjs", &[&base, common::KEY_A, &twilio.url], RUN_TIMEOUT).await;
    server.stop().await;
    println!("inbox browser test: {:.1}s in all", started.elapsed().as_secs_f64());
    assert!(passed, "{failure}");
    let sent: Vec<_> = twilio.requests().into_iter().filter(|r| r.path.ends_with("/Messages.json")).collect();
    let bodies: Vec<_> = sent.iter().map(|r| (r.form_field("To"), r.form_field("Body"))).collect();
    assert!(
        sent.iter().any(|r| r.form_field("Body").as_deref() == Some(REFUND) && r.form_field("To").as_deref() == Some(SMS_PEER)),
        "the canned reply never reached the stub Twilio API; it got: {bodies:?}"
    );
    assert!(
        !sent.iter().any(|r| r.form_field("Body").unwrap_or_default().contains(NOTE)),
        "the private note reached the SMS provider: {bodies:?}"
    );
}

/// `inbox_assign.mjs`: an agent (email and password) assigns from the picker, to itself and then
/// to a colleague whose Mine tab gains the conversation; desktop notifications for Unassigned,
/// none for another agent's conversation, none with the setting off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_assign_from_the_picker_and_get_desktop_notifications_in_chromium() {
    tokio::task::spawn_blocking(common::browser::ensure).await.unwrap();
    let server = common::TestServer::start_with(common::test_config()).await;
    let (passed, failure) =
        common::browser::run_scenario("inbox_assign.mjs", &[&server.url(""), common::KEY_A], RUN_TIMEOUT).await;
    server.stop().await;
    assert!(passed, "{failure}");
}
