//! Twilio-compatible SMS/MMS end to end: signed inbound webhooks into rooms, outbound through
//! a stub Twilio API, status callbacks, retries.

use crate::common;
use crate::common::channels::{
    agent_ws, config, conversations, create_account, first_conversation, fixture, hook_url, messages, post,
    post_webhook, send_and_settle, twilio_account, twilio_stub,
};
use crate::common::monitor::{Monitor, monitor_client};
use crate::common::stub::{Answer, Stub, eventually};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;

mod outbox;
use switchboard::channels::twilio::signature;

const TOKEN: &str = "twilio-auth-token-0123456789";

const FORM: &str = "application/x-www-form-urlencoded";

async fn account(srv: &TestServer, stub: &Stub, number: &str) -> String {
    let body = twilio_account("support line", number, TOKEN, &stub.url);
    let a = create_account(srv, body, &[TOKEN]).await;
    assert!(a.get("credentials").is_none(), "credentials are write-only: {a}");
    a["id"].as_str().unwrap().to_string()
}

/// Twilio's signature of `form` posted to `url`, with `token`.
fn signed(token: &str, url: &str, form: &str) -> String {
    let params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes()).into_owned().collect();
    signature(token, url, &params)
}

/// Posts a form webhook the way Twilio does, signed (or not) with `token`.
async fn webhook(srv: &TestServer, account: &str, form: &str, token: Option<&str>) -> reqwest::Response {
    let url = hook_url(srv, "twilio", account);
    let mut headers = vec![("content-type", FORM.to_string())];
    headers.extend(token.map(|t| ("x-twilio-signature", signed(t, &url, form))));
    post_webhook(srv, "twilio", account, &headers, form).await
}

/// A server on `backend` with a Twilio account on a fresh stub.
async fn start(backend: Backend) -> (TestServer, Stub, String) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = twilio_stub().await;
    let acc = account(&srv, &stub, "+15005550006").await;
    (srv, stub, acc)
}

/// A server on `backend` with a Twilio account, and the room an inbound SMS opened.
async fn with_room(backend: Backend) -> (TestServer, Stub, String, String) {
    let (srv, stub, acc) = start(backend).await;
    webhook(&srv, &acc, &fixture("twilio_inbound_sms.form"), Some(TOKEN)).await;
    let c = first_conversation(&srv).await;
    (srv, stub, acc, c)
}

#[tokio::test]
async fn signature_bad_or_missing_is_403_and_stores_nothing() {
    on_every_backend(signature_bad_or_missing_is_403_and_stores_nothing_on).await;
}

async fn signature_bad_or_missing_is_403_and_stores_nothing_on(backend: Backend) {
    let (srv, _stub, acc) = start(backend).await;
    let sms = fixture("twilio_inbound_sms.form");
    assert_eq!(webhook(&srv, &acc, &sms, None).await.status(), 403);
    assert_eq!(webhook(&srv, &acc, &sms, Some("wrong-token")).await.status(), 403);
    let tampered = sms.replace("help", "refund");
    let url = hook_url(&srv, "twilio", &acc);
    let r = post(&url, &[("x-twilio-signature", signed(TOKEN, &url, &sms))], &tampered).await;
    assert_eq!(r.status(), 403, "signature over other params");
    assert!(conversations(&srv).await.is_empty());
    let r = webhook(&srv, &uuid::Uuid::now_v7().to_string(), &sms, Some(TOKEN)).await;
    assert_eq!(r.status(), 404, "unknown account");
    srv.stop().await;
}

/// A rotated auth token or a deleted account applies to the very next callback (the node
/// keeps accounts briefly in memory for the webhook path; a change through it is seen at once).
#[tokio::test]
async fn rotated_credentials_and_deleted_accounts_apply_to_the_next_callback() {
    on_every_backend(async |backend| {
        let (srv, _stub, acc) = start(backend).await;
        let sms = fixture("twilio_inbound_sms.form");
        assert_eq!(webhook(&srv, &acc, &sms, Some(TOKEN)).await.status(), 200);
        let rotated = "twilio-auth-token-rotated-987654";
        let creds =
            json!({"credentials": {"account_sid": "AC00000000000000000000000000000000", "auth_token": rotated}});
        let (status, _) = srv.api(KEY_A).put(&format!("/v1.0/conversation_accounts/{acc}"), creds).await;
        assert_eq!(status, 200);
        let retry = sms.replace("SM", "SN");
        assert_eq!(webhook(&srv, &acc, &retry, Some(TOKEN)).await.status(), 403, "old token refused ({backend:?})");
        assert_eq!(webhook(&srv, &acc, &retry, Some(rotated)).await.status(), 200, "new token accepted");
        assert_eq!(srv.api(KEY_A).delete(&format!("/v1.0/conversation_accounts/{acc}")).await.0, 200);
        let later = sms.replace("SM", "SO");
        assert_eq!(webhook(&srv, &acc, &later, Some(rotated)).await.status(), 404, "deleted account ({backend:?})");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn inbound_sms_creates_a_room_then_reuses_it_and_dedupes_retries() {
    on_every_backend(inbound_sms_creates_a_room_then_reuses_it_and_dedupes_retries_on).await;
}

async fn inbound_sms_creates_a_room_then_reuses_it_and_dedupes_retries_on(backend: Backend) {
    let (srv, stub, acc) = start(backend).await;
    let sms = fixture("twilio_inbound_sms.form");
    let r = webhook(&srv, &acc, &sms, Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/xml");
    assert!(r.text().await.unwrap().contains("<Response></Response>"), "empty TwiML");
    // Twilio retries the same MessageSid: still one message.
    assert_eq!(webhook(&srv, &acc, &sms, Some(TOKEN)).await.status(), 200);
    let convs = conversations(&srv).await;
    assert_eq!(convs.len(), 1);
    let c = convs[0]["id"].as_str().unwrap();
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["text"], "Hi, I need help with my order");
    assert_eq!((msgs[0]["direction"].as_str(), msgs[0]["channel"].as_str()), (Some("inbound"), Some("tel")));
    let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
    assert_eq!(parts["result"][0]["address"], json!({"type": "tel", "target": "+14155550100", "name": ""}));
    assert_eq!(parts["result"][0]["account_id"], acc.as_str());

    // The same number again (an MMS, new sid) lands in the same room, with its media.
    assert_eq!(webhook(&srv, &acc, &fixture("twilio_inbound_mms.form"), Some(TOKEN)).await.status(), 200);
    assert_eq!(conversations(&srv).await.len(), 1);
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["medias"][0]["content_type"], "image/jpeg");
    assert!(msgs[1]["medias"][0]["url"].as_str().unwrap().starts_with("https://api.twilio.com/"));

    // Another of our numbers is another account: another room.
    let other = account(&srv, &stub, "+15005550007").await;
    assert_eq!(
        webhook(&srv, &other, &sms.replace("%2B15005550006", "%2B15005550007"), Some(TOKEN)).await.status(),
        200
    );
    assert_eq!(conversations(&srv).await.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn reply_goes_out_through_twilio_and_status_callbacks_update_it() {
    on_every_backend(reply_goes_out_through_twilio_and_status_callbacks_update_it_on).await;
}

async fn reply_goes_out_through_twilio_and_status_callbacks_update_it_on(backend: Backend) {
    let (srv, stub, acc, c) = with_room(backend).await;
    let api = srv.api(KEY_A);
    let mut ws = agent_ws(&srv, &c).await;

    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "We are on it!"})).await;
    assert_eq!(s, 201);
    assert_eq!((m["status"].as_str(), m["deliveries"][0]["status"].as_str()), (Some("queued"), Some("queued")));
    let req = &stub.wait_for(1).await[0];
    assert_eq!(req.path, "/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("AC00000000000000000000000000000000:{TOKEN}"));
    assert_eq!(req.header("authorization"), format!("Basic {basic}"));
    assert_eq!(req.form_field("To").as_deref(), Some("+14155550100"));
    assert_eq!(req.form_field("From").as_deref(), Some("+15005550006"));
    assert_eq!(req.form_field("Body").as_deref(), Some("We are on it!"));
    let callback = req.form_field("StatusCallback").unwrap();
    assert_eq!(callback, srv.url(&format!("/v1.0/hooks/twilio/{acc}")));

    // The room sees the message, then its delivery move: queued → sent.
    assert_eq!(ws.next_of("message").await["message"]["id"], m["id"]);
    let upd = ws.next_of("message_updated").await;
    assert_eq!(upd["message"]["deliveries"][0]["status"], "sent");
    let sid = upd["message"]["deliveries"][0]["provider_message_id"].as_str().unwrap().to_string();

    // Twilio reports delivery to the StatusCallback URL.
    let status = fixture("twilio_status_delivered.form").replace("__SID__", &sid);
    assert_eq!(webhook(&srv, &acc, &status, Some(TOKEN)).await.status(), 200);
    let upd = ws.next_of("message_updated").await;
    assert_eq!(upd["message"]["status"], "delivered");
    let (_, stored) = api.get(&format!("/v1.0/conversations/{c}/messages/{}", m["id"].as_str().unwrap())).await;
    assert_eq!(stored["deliveries"][0]["status"], "delivered");
    // A late "sent" report does not move it backwards.
    let late = status.replace("MessageStatus=delivered", "MessageStatus=sent");
    webhook(&srv, &acc, &late, Some(TOKEN)).await;
    let (_, stored) = api.get(&format!("/v1.0/conversations/{c}/messages/{}", m["id"].as_str().unwrap())).await;
    assert_eq!(stored["deliveries"][0]["status"], "delivered");
    srv.stop().await;
}

#[tokio::test]
async fn transient_errors_are_retried_and_permanent_ones_fail() {
    on_every_backend(transient_errors_are_retried_and_permanent_ones_fail_on).await;
}

async fn transient_errors_are_retried_and_permanent_ones_fail_on(backend: Backend) {
    let (srv, stub, _, c) = with_room(backend).await;

    // 500, then 429 with Retry-After: 0, then success: sent on the third attempt.
    stub.script([
        Answer::status(500, "oops"),
        Answer { status: 429, headers: vec![("retry-after", "0".into())], body: "slow down".into() },
    ]);
    let d = send_and_settle(&srv, &c, "retry me").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("sent"), Some(3)));
    assert_eq!(stub.requests().len(), 3);

    // Always 503: failed after max_attempts (3).
    stub.script((0..3).map(|_| Answer::status(503, "down")));
    let d = send_and_settle(&srv, &c, "doomed").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(3)));
    assert!(d["error"].as_str().unwrap().contains("503"));

    // A 400 is permanent: no retry.
    let before = stub.requests().len();
    stub.script([Answer::status(400, r#"{"code": 21211, "message": "Invalid 'To' Phone Number"}"#)]);
    let d = send_and_settle(&srv, &c, "bad number").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(1)));
    assert_eq!(stub.requests().len(), before + 1);

    // The operator sees it in /metrics: 4 retries (2 + 2), deliveries by status, an empty queue.
    let text = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
    let value = |name: &str, labels: &str| -> f64 {
        let series = text.lines().filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels));
        series.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    assert_eq!(value("switchboard_outbox_retries_total", "kind=\"channel\""), 4.0, "{text}");
    assert_eq!(value("switchboard_deliveries_total", "channel=\"tel\",status=\"failed\""), 2.0);
    assert!(text.contains("switchboard_outbox_depth{"), "the queue depth is exported");
    assert_eq!(value("switchboard_outbox_depth", "kind=\"channel\""), 0.0);
    srv.stop().await;
}

#[tokio::test]
async fn long_text_is_split_and_accounts_are_validated() {
    on_every_backend(long_text_is_split_and_accounts_are_validated_on).await;
}

async fn long_text_is_split_and_accounts_are_validated_on(backend: Backend) {
    let (srv, stub, acc, c) = with_room(backend).await;
    let api = srv.api(KEY_A);
    let long = "word ".repeat(700); // 3,500 chars → 3 SMS of at most 1,600
    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": long})).await;
    let reqs = stub.wait_for(3).await;
    assert!(reqs.iter().all(|r| r.form_field("Body").unwrap().chars().count() <= 1600));
    let joined: Vec<String> = reqs.iter().map(|r| r.form_field("Body").unwrap()).collect();
    assert_eq!(joined.join(" ").split_whitespace().count(), 700);

    for (body, code) in [
        (json!({"type": "tel", "provider": "pigeon", "address": "x", "credentials": {}}), "unknown_provider"),
        (json!({"type": "line", "provider": "twilio", "address": "x", "credentials": {}}), "provider_mismatch"),
        (
            json!({"type": "tel", "provider": "twilio", "address": "+1", "credentials": {"account_sid": "AC1"}}),
            "missing_credentials",
        ),
        // A blank or non-string secret is as missing as an absent one.
        (
            json!({"type": "tel", "provider": "twilio", "address": "+1",
                   "credentials": {"account_sid": "AC1", "auth_token": "  "}}),
            "missing_credentials",
        ),
        (
            json!({"type": "tel", "provider": "twilio", "address": "+1",
                   "credentials": {"account_sid": "AC1", "auth_token": 42}}),
            "missing_credentials",
        ),
    ] {
        let (s, e) = api.post("/v1.0/conversation_accounts", body).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some(code)));
        if code == "missing_credentials" {
            assert!(e["error"]["message"].as_str().unwrap().contains("credentials.auth_token"), "{e}");
        }
    }
    // Another tenant sees nothing of this account.
    let (s, _) = srv.api(common::KEY_B).get(&format!("/v1.0/conversation_accounts/{acc}")).await;
    assert_eq!(s, 404);
    srv.stop().await;
}

/// An inbound SMS takes the one door: the room and the sender's participant are created
/// through `conversations` and announced like any other (`conversation.created`, then
/// `participant.added` for the phone number, then `message.created`), and a text over
/// `limits.max_text_bytes` is stored cut on a character boundary and answered 200 (Twilio
/// would retry a refusal), counted once in `messages_posted_total{entry="provider"}`.
#[tokio::test]
async fn inbound_sms_announces_its_participant_and_is_cut_not_refused() {
    on_every_backend(async |backend| {
        let mut cfg = config();
        cfg.limits.max_text_bytes = 100;
        let srv = TestServer::start_on(backend, cfg).await;
        let stub = twilio_stub().await;
        let acc = account(&srv, &stub, "+15005550006").await;
        let mut events = srv.state.broker.events();
        // 13 ASCII bytes, then two-byte characters: byte 100 falls inside one.
        let long = format!("Order 12345: {}", "é".repeat(100));
        let encoded: String = form_urlencoded::byte_serialize(long.as_bytes()).collect();
        let sms = fixture("twilio_inbound_sms.form")
            .replace("Body=Hi%2C+I+need+help+with+my+order", &format!("Body={encoded}"));
        assert!(sms.contains(&encoded), "fixture body replaced");
        assert_eq!(webhook(&srv, &acc, &sms, Some(TOKEN)).await.status(), 200, "{backend:?}: cut, not refused");
        assert_eq!(webhook(&srv, &acc, &sms, Some(TOKEN)).await.status(), 200, "a retry");
        let c = first_conversation(&srv).await;
        let msgs = messages(&srv, &c).await;
        assert_eq!(msgs.len(), 1);
        let text = msgs[0]["text"].as_str().unwrap();
        assert_eq!(text, format!("Order 12345: {}", "é".repeat(43)), "{backend:?}");
        assert!(text.len() <= 100 && long.starts_with(text));

        let mut seen: Vec<switchboard::broker::Event> = Vec::new();
        while !seen.iter().any(|e| e.kind.as_str() == "message.created") {
            let e = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
            if e.conversation_id.is_some() {
                seen.push(e);
            }
        }
        let kinds: Vec<&str> = seen.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["conversation.created", "participant.added", "message.created"], "{backend:?}");
        let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
        assert_eq!(seen[1].data.value()["id"], parts["result"][0]["id"]);
        assert_eq!(seen[1].data.value()["address"], json!({"type": "tel", "target": "+14155550100", "name": ""}));
        assert_eq!(seen[1].conversation_id.map(|id| id.to_string()), Some(c.clone()));

        let scrape = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
        let posted = scrape
            .lines()
            .find(|l| l.starts_with("switchboard_messages_posted_total{") && l.contains("entry=\"provider\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
        assert_eq!(posted, Some(1.0), "{backend:?}: the retry is no second message");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_private_note_is_never_sent_by_sms() {
    on_every_backend(async |backend| {
        let (srv, stub, _, c) = with_room(backend).await;
        let api = srv.api(KEY_A);
        let (s, note) = api
            .post(
                &format!("/v1.0/conversations/{c}/messages"),
                json!({"text": "VIP, refund him", "visibility": "internal"}),
            )
            .await;
        assert_eq!((s, note["visibility"].as_str()), (201, Some("internal")), "{note}");
        assert!(note.get("deliveries").is_none(), "{backend:?}: no delivery planned for a note: {note}");
        let d = send_and_settle(&srv, &c, "Your refund is on its way").await;
        assert_eq!(d["status"], "sent", "{backend:?}");
        let sent: Vec<String> = stub.requests().iter().filter_map(|r| r.form_field("Body")).collect();
        assert_eq!(sent, ["Your refund is on its way"], "{backend:?}: the note never reached the provider");
        srv.stop().await;
    })
    .await;
}
