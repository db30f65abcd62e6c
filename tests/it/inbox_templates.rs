//! The inbox's WhatsApp template picker (issue 20), end to end in Debian's headless Chromium.
//!
//! A WhatsApp customer wrote 25 hours ago (the provider's own webhook timestamp, signed as Meta
//! signs it), so their 24-hour window is closed. An agent signed in with email and password
//! opens the room in `node tests/browser/templates.mjs <base url> <email> <password> <room>`,
//! sees the closed-window notice, picks `order_update` from the account's approved templates
//! (served by a stub Graph API), fills its parameters (a missing one is explained first) and
//! sends it; the page checks that the room shows the rendered text and that everything is
//! axe-clean. Here we check what reached the stub: a `type: template` message carrying the
//! parameters typed in the page. What the run needs is installed when missing
//! (`common::browser`); it never skips.

use crate::agent_accounts::{PASSWORD, signed_up};
use crate::channels_window::{DAY_AND_AN_HOUR, graph, sends, wa_inbound, whatsapp};
use crate::common::channels::{config, first_conversation, fixture_at};
use crate::common::stub::eventually;
use crate::common::{self, KEY_A, TestServer};
use serde_json::json;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(150);
const EMAIL: &str = "tara@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_answers_a_closed_whatsapp_window_with_a_template() {
    tokio::task::spawn_blocking(common::browser::ensure).await.unwrap();
    let srv = TestServer::start_with(config()).await;
    let stub = graph().await;
    let acc = whatsapp(&srv, &stub, "account").await;
    wa_inbound(&srv, &acc, &fixture_at("whatsapp_inbound_text.json", DAY_AND_AN_HOUR)).await;
    let room = first_conversation(&srv).await;
    signed_up(&srv, KEY_A, EMAIL, "agent").await;

    let args = [srv.url(""), EMAIL.to_string(), PASSWORD.to_string(), room.clone()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (passed, failure) = common::browser::run_scenario("templates.mjs", &args, RUN_TIMEOUT).await;
    assert!(passed, "{failure}");

    let sent = eventually(|| async { sends(&stub).first().cloned() }).await;
    assert_eq!(
        sent["template"],
        json!({"name": "order_update", "language": {"code": "en_US"},
               "components": [{"type": "body", "parameters": [{"type": "text", "text": "Sheena"}, {"type": "text", "text": "#1042"}]}]}),
        "{sent}"
    );
    assert_eq!((sent["type"].as_str(), sent["to"].as_str()), (Some("template"), Some("16505551234")));
    assert_eq!(sends(&stub).len(), 1, "only the template went out: {:?}", sends(&stub));
    srv.stop().await;
}
