//! What the channel suites (`tests/it/channels_*.rs`) share: fixtures, a config with fast
//! retries, a stub Twilio Messages API (which the contact, note and browser suites send SMS
//! to as well), creating an account, posting a webhook, and reading back rooms, messages and
//! deliveries. Other provider-specific pieces (signing, stub answers, credentials) stay in
//! each suite.

use super::stub::{Answer, Stub, eventually};
use super::{KEY_A, TestServer, Ws};
use serde_json::Value;

/// `tests/fixtures/<name>`, trimmed, its `__TIMESTAMP__` (unix seconds) and
/// `__TIMESTAMP_MS__` (milliseconds) placeholders set to now.
pub fn fixture(name: &str) -> String {
    fixture_at(name, 0)
}

/// [`fixture`] sent `secs_ago` seconds ago: the providers' own timestamps are what the
/// 24-hour customer-service window counts from, so "25 hours later" needs no clock.
pub fn fixture_at(name: &str, secs_ago: i64) -> String {
    let raw = std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
        - secs_ago * 1000;
    raw.trim().replace("__TIMESTAMP_MS__", &ms.to_string()).replace("__TIMESTAMP__", &(ms / 1000).to_string())
}

/// A Twilio Messages API that accepts every send, like the real one: 201 and the message
/// resource of `tests/fixtures/twilio_send_response.json` (sid `SM…` counting up, the body sent).
pub async fn twilio_stub() -> Stub {
    Stub::start(|req, i| {
        let body = fixture("twilio_send_response.json")
            .replace("__SID__", &format!("SM{:032x}", i + 1))
            .replace("__BODY__", &req.form_field("Body").unwrap_or_default());
        Answer::status(201, &body)
    })
    .await
}

/// The test config with quick retries (10 ms base, 50 ms cap) and at most 3 attempts.
pub fn config() -> switchboard::Config {
    let mut c = super::test_config();
    c.channels.retry_base_ms = 10;
    c.channels.retry_max_ms = 50;
    c.channels.max_attempts = 3;
    c
}

/// The body of a Twilio SMS account named `name` on our number `address`, signed with
/// `auth_token` (account SID `AC0…0`), sending through `api_base` (a stub, or a closed port when
/// the test never lets a send succeed).
pub fn twilio_account(name: &str, address: &str, auth_token: &str, api_base: &str) -> Value {
    serde_json::json!({"type": "tel", "provider": "twilio", "name": name, "address": address,
                       "credentials": {"account_sid": format!("AC{}", "0".repeat(32)), "auth_token": auth_token},
                       "api_base_url": api_base})
}

/// Creates an account for tenant `a` (201 expected) and returns it as the API answered;
/// none of `secrets` may show in that answer (credentials are write-only).
pub async fn create_account(srv: &TestServer, body: Value, secrets: &[&str]) -> Value {
    let (s, a) = srv.api(KEY_A).post("/v1.0/conversation_accounts", body).await;
    assert_eq!(s, 201, "{a}");
    for secret in secrets {
        assert!(!a.to_string().contains(secret), "credentials are write-only: {a}");
    }
    a
}

/// The inbound webhook URL of `account` on `provider`.
pub fn hook_url(srv: &TestServer, provider: &str, account: &str) -> String {
    srv.url(&format!("/v1.0/hooks/{provider}/{account}"))
}

/// POSTs `body` to `url` with exactly these headers.
pub async fn post(url: &str, headers: &[(&str, String)], body: &str) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(url);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    req.body(body.to_string()).send().await.unwrap()
}

/// POSTs `body` to `provider`'s webhook for `account` with exactly these headers.
pub async fn post_webhook(
    srv: &TestServer,
    provider: &str,
    account: &str,
    headers: &[(&str, String)],
    body: &str,
) -> reqwest::Response {
    post(&hook_url(srv, provider, account), headers, body).await
}

/// A JSON webhook to `provider` for `account`, with these signature headers (none: unsigned).
pub async fn json_webhook(
    srv: &TestServer,
    provider: &str,
    account: &str,
    body: &str,
    signature: &[(&str, String)],
) -> reqwest::Response {
    let mut headers = vec![("content-type", "application/json".to_string())];
    headers.extend_from_slice(signature);
    post_webhook(srv, provider, account, &headers, body).await
}

/// Tenant `a`'s conversations.
pub async fn conversations(srv: &TestServer) -> Vec<Value> {
    srv.api(KEY_A).get("/v1.0/conversations").await.1["result"].as_array().unwrap().clone()
}

/// The id of tenant `a`'s first conversation.
pub async fn first_conversation(srv: &TestServer) -> String {
    conversations(srv).await[0]["id"].as_str().unwrap().to_string()
}

/// The messages of conversation `c`.
pub async fn messages(srv: &TestServer, c: &str) -> Vec<Value> {
    srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/messages")).await.1["result"].as_array().unwrap().clone()
}

/// Polls message `id` of conversation `c` until its first delivery is in one of `states`.
pub async fn delivery_when(srv: &TestServer, c: &str, id: &str, states: &[&str]) -> Value {
    let api = srv.api(KEY_A);
    let path = format!("/v1.0/conversations/{c}/messages/{id}");
    eventually(|| async {
        let d = api.get(&path).await.1["deliveries"][0].clone();
        d["status"].as_str().is_some_and(|s| states.contains(&s)).then_some(d)
    })
    .await
}

/// Polls a message until its first delivery is `sent` or `failed`.
pub async fn settled(srv: &TestServer, c: &str, id: &str) -> Value {
    delivery_when(srv, c, id, &["sent", "failed"]).await
}

/// Posts `text` to conversation `c` and waits until its first delivery is `sent` or `failed`.
pub async fn send_and_settle(srv: &TestServer, c: &str, text: &str) -> Value {
    let (_, m) =
        srv.api(KEY_A).post(&format!("/v1.0/conversations/{c}/messages"), serde_json::json!({"text": text})).await;
    settled(srv, c, m["id"].as_str().unwrap()).await
}

/// Adds a webchat `agent` to conversation `c` and returns its WebSocket, subscribed to `c`.
pub async fn agent_ws(srv: &TestServer, c: &str) -> Ws {
    let api = srv.api(KEY_A);
    api.webchat(c, "agent").await;
    let mut ws = srv.ws(&api.token("agent", &[c]).await).await;
    ws.subscribe(c, None).await;
    ws
}

/// The next `message_updated` frame, past the room's own `message` and presence frames.
pub async fn next_update(ws: &mut Ws) -> Value {
    loop {
        let f = ws.next().await;
        match f["type"].as_str() {
            Some("message_updated") => return f,
            Some("message" | "presence" | "typing" | "read") => continue,
            _ => panic!("expected `message_updated`, got {f}"),
        }
    }
}

/// A tiny SVG a stub serves as a provider's media (text, so it fits a stub's string body).
pub const SVG: &str =
    r#"<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"><rect width="2" height="2"/></svg>"#;

/// Message `i` of conversation `c` once its first media was re-hosted (has a `media_id`).
pub async fn rehosted(srv: &TestServer, c: &str, i: usize) -> Value {
    eventually(|| async {
        let msgs = messages(srv, c).await;
        msgs.get(i).filter(|m| m["medias"][0]["media_id"].is_string()).cloned()
    })
    .await
}
