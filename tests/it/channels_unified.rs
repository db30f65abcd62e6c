//! The unified story, end to end: a conversation begins as an SMS and continues on LINE without
//! a break. SMS in (Twilio) → new room → a webchat agent added over the API sees it live on
//! WebSocket → the agent replies over WS → the stub Twilio API gets the SMS → the API links the
//! person's LINE id to their participant → they write on LINE → same room, the agent sees it
//! live → the agent's next reply goes out on LINE, and Twilio gets nothing more.

use crate::common;
use crate::common::channels::{create_account, fixture, hook_url, post, twilio_account, twilio_stub};
use crate::common::stub::{Answer, Stub};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;
use std::time::Duration;

const TWILIO_TOKEN: &str = "twilio-auth-token-0123456789";
const LINE_SECRET: &str = "line-channel-secret-0123456789ab";
const LINE_TOKEN: &str = "line-channel-access-token-abcdefghijklmnop";
const PHONE: &str = "+14155550100";
const LINE_USER: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

async fn account(srv: &TestServer, body: serde_json::Value) -> String {
    create_account(srv, body, &[]).await["id"].as_str().unwrap().to_string()
}

async fn sms(srv: &TestServer, account: &str, form: &str) {
    let url = hook_url(srv, "twilio", account);
    let params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes()).into_owned().collect();
    let sig = switchboard::channels::twilio::signature(TWILIO_TOKEN, &url, &params);
    assert_eq!(post(&url, &[("x-twilio-signature", sig)], form).await.status(), 200);
}

async fn line(srv: &TestServer, account: &str, body: &str) {
    let sig = switchboard::channels::line::signature(LINE_SECRET, body.as_bytes());
    assert_eq!(post(&hook_url(srv, "line", account), &[("x-line-signature", sig)], body).await.status(), 200);
}

/// The next `message` frame not written by `me`, past acks and delivery updates of my replies.
async fn next_message(ws: &mut common::Ws, me: &str) -> serde_json::Value {
    loop {
        let f = ws.next().await;
        match f["type"].as_str() {
            Some("message") if f["message"]["author"] != me => return f,
            Some("message") => continue,
            Some("ack" | "message_updated" | "presence" | "typing" | "read") => continue,
            _ => panic!("unexpected frame {f}"),
        }
    }
}

#[tokio::test]
async fn a_conversation_starts_on_sms_and_continues_on_line() {
    on_every_backend(a_conversation_starts_on_sms_and_continues_on_line_on).await;
}

async fn a_conversation_starts_on_sms_and_continues_on_line_on(backend: Backend) {
    let mut config = common::test_config();
    config.channels.retry_base_ms = 10;
    let srv = TestServer::start_on(backend, config).await;
    let twilio = twilio_stub().await;
    let line_api = Stub::start(|_, i| {
        Answer::status(200, &fixture("line_push_response.json").replace("__ID__", &format!("{}", 9000 + i)))
    })
    .await;
    let sms_acc = account(&srv, twilio_account("support", "+15005550006", TWILIO_TOKEN, &twilio.url)).await;
    let line_acc = account(
        &srv,
        json!({"type": "line", "provider": "line", "name": "LINE", "address": "1650000001",
               "credentials": {"channel_secret": LINE_SECRET, "channel_access_token": LINE_TOKEN},
               "api_base_url": line_api.url}),
    )
    .await;
    let api = srv.api(KEY_A);

    // 1. An SMS opens a new room with the sender as participant.
    sms(&srv, &sms_acc, &fixture("twilio_inbound_sms.form")).await;
    let (_, convs) = api.get("/v1.0/conversations").await;
    assert_eq!(convs["result"].as_array().unwrap().len(), 1);
    let c = convs["result"][0]["id"].as_str().unwrap().to_string();
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    let person = parts["result"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(parts["result"][0]["address"]["target"], PHONE);

    // 2. An agent joins over the API and subscribes: the SMS is there, and the next one is live.
    let me = api.webchat(&c, "agent").await;
    let mut agent = srv.ws(&api.token("agent", &[&c]).await).await;
    agent.subscribe(&c, Some(0)).await;
    let first = next_message(&mut agent, &me).await;
    assert_eq!(
        (first["message"]["text"].as_str(), first["message"]["channel"].as_str()),
        (Some("Hi, I need help with my order"), Some("tel"))
    );
    sms(&srv, &sms_acc, &fixture("twilio_inbound_mms.form")).await;
    let live = next_message(&mut agent, &me).await;
    assert_eq!(
        (live["message"]["text"].as_str(), live["message"]["author"].as_str()),
        (Some("Here is the photo"), Some(person.as_str()))
    );

    // 3. The agent answers over WebSocket; the person gets it as an SMS.
    agent.send(json!({"type": "send", "conversation_id": c, "text": "Thanks, checking now", "client_id": "r1"})).await;
    assert_eq!(agent.next_of("ack").await["client_id"], "r1");
    let out = &twilio.wait_for(1).await[0];
    assert_eq!(out.form_field("To").as_deref(), Some(PHONE));
    assert_eq!(out.form_field("Body").as_deref(), Some("Thanks, checking now"));

    // 4. The API links their LINE id to the same participant.
    let (s, p) = api
        .post(
            &format!("/v1.0/conversations/{c}/participants/{person}/links"),
            json!({"address": {"type": "line", "target": LINE_USER}, "account_id": line_acc}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["linked"][0]["address"]["target"], LINE_USER);

    // 5. They write on LINE: same room, same author, and the agent sees it live.
    line(&srv, &line_acc, &fixture("line_inbound_text.json")).await;
    let (_, convs) = api.get("/v1.0/conversations").await;
    assert_eq!(convs["result"].as_array().unwrap().len(), 1, "no second room");
    let m = next_message(&mut agent, &me).await;
    assert_eq!(m["message"]["text"], "Hello, I ordered a lamp yesterday");
    assert_eq!(
        (m["message"]["channel"].as_str(), m["message"]["author"].as_str()),
        (Some("line"), Some(person.as_str()))
    );

    // 6. The agent's next reply follows them to LINE; Twilio gets nothing more.
    agent.send(json!({"type": "send", "conversation_id": c, "text": "Your lamp ships today", "client_id": "r2"})).await;
    let push = &line_api.wait_for(1).await[0];
    assert_eq!(push.path, "/v2/bot/message/push");
    assert_eq!(push.header("authorization"), format!("Bearer {LINE_TOKEN}"));
    assert_eq!(push.json(), json!({"to": LINE_USER, "messages": [{"type": "text", "text": "Your lamp ships today"}]}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(twilio.requests().len(), 1, "the SMS channel stays quiet");
    srv.stop().await;
}
