//! Telnyx-compatible SMS/MMS end to end: Ed25519-signed webhooks into rooms, outbound through a
//! stub Telnyx messages API, delivery events, retries.

use crate::common::channels::{
    agent_ws, config, conversations, create_account, delivery_when, first_conversation, fixture, json_webhook,
    messages, next_update, post_webhook, send_and_settle,
};
use crate::common::stub::{Answer, Stub};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use switchboard::channels::telnyx::signed_payload;

const API_KEY: &str = "KEY0190ABCDEF0123456789_telnyxtestkey";
const PEER: &str = "+18665550001";

/// Our stand-in for Telnyx's signing key (fixed seed: the tests are reproducible).
fn telnyx_key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

fn public_key(k: &SigningKey) -> String {
    STANDARD.encode(k.verifying_key().to_bytes())
}

async fn telnyx_stub() -> Stub {
    Stub::start(|req, i| {
        let id = format!("40385f64-5717-4562-b3fc-2c963f66a{i:03}");
        let text = req.json()["text"].as_str().unwrap_or_default().to_string();
        let body = fixture("telnyx_send_response.json")
            .replace("__ID__", &id)
            .replace("\"__TEXT__\"", &serde_json::to_string(&text).unwrap());
        Answer::status(200, &body)
    })
    .await
}

async fn account(srv: &TestServer, stub: &Stub, number: &str) -> String {
    let body = json!({"type": "tel", "provider": "telnyx", "name": "Telnyx line", "address": number,
                      "credentials": {"api_key": API_KEY, "public_key": public_key(&telnyx_key())},
                      "api_base_url": stub.url});
    create_account(srv, body, &[API_KEY]).await["id"].as_str().unwrap().to_string()
}

/// The signature headers of `body` signed by `key` at unix time `ts`.
fn signed(key: &SigningKey, ts: String, body: &str) -> Vec<(&'static str, String)> {
    let sig = STANDARD.encode(key.sign(&signed_payload(&ts, body.as_bytes())).to_bytes());
    vec![("telnyx-signature-ed25519", sig), ("telnyx-timestamp", ts)]
}

/// Posts a webhook signed by `key` at `age_secs` in the past (or unsigned when `None`).
async fn webhook_at(
    srv: &TestServer,
    account: &str,
    body: &str,
    key: Option<&SigningKey>,
    age_secs: i64,
) -> reqwest::Response {
    let headers = key.map(|k| signed(k, (chrono::Utc::now().timestamp() - age_secs).to_string(), body));
    json_webhook(srv, "telnyx", account, body, &headers.unwrap_or_default()).await
}

async fn webhook(srv: &TestServer, account: &str, body: &str) -> reqwest::Response {
    webhook_at(srv, account, body, Some(&telnyx_key()), 0).await
}

/// A server on `backend` with a Telnyx account on a fresh stub.
async fn start(backend: Backend) -> (TestServer, Stub, String) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = telnyx_stub().await;
    let acc = account(&srv, &stub, "+18445550001").await;
    (srv, stub, acc)
}

/// A server on `backend` with a Telnyx account, and the room an inbound SMS opened.
async fn with_room(backend: Backend) -> (TestServer, Stub, String, String) {
    let (srv, stub, acc) = start(backend).await;
    webhook(&srv, &acc, &fixture("telnyx_inbound_sms.json")).await;
    let c = first_conversation(&srv).await;
    (srv, stub, acc, c)
}

#[tokio::test]
async fn signature_bad_missing_or_stale_is_403_and_stores_nothing() {
    on_every_backend(signature_bad_missing_or_stale_is_403_and_stores_nothing_on).await;
}

async fn signature_bad_missing_or_stale_is_403_and_stores_nothing_on(backend: Backend) {
    let (srv, _stub, acc) = start(backend).await;
    let sms = fixture("telnyx_inbound_sms.json");
    assert_eq!(webhook_at(&srv, &acc, &sms, None, 0).await.status(), 403, "unsigned");
    let impostor = SigningKey::from_bytes(&[7u8; 32]);
    assert_eq!(webhook_at(&srv, &acc, &sms, Some(&impostor), 0).await.status(), 403, "other key");
    assert_eq!(webhook_at(&srv, &acc, &sms, Some(&telnyx_key()), 600).await.status(), 403, "ten minutes old");
    // Signed for one body, sent with another.
    let headers = signed(&telnyx_key(), chrono::Utc::now().timestamp().to_string(), &sms);
    let r = post_webhook(&srv, "telnyx", &acc, &headers, &sms.replace("package", "parcel")).await;
    assert_eq!(r.status(), 403);
    assert!(conversations(&srv).await.is_empty());
    // Within the tolerance is fine.
    assert_eq!(webhook_at(&srv, &acc, &sms, Some(&telnyx_key()), 120).await.status(), 200);
    srv.stop().await;
}

#[tokio::test]
async fn inbound_creates_a_room_then_reuses_it_and_dedupes_retries() {
    on_every_backend(inbound_creates_a_room_then_reuses_it_and_dedupes_retries_on).await;
}

async fn inbound_creates_a_room_then_reuses_it_and_dedupes_retries_on(backend: Backend) {
    let (srv, stub, acc) = start(backend).await;
    let sms = fixture("telnyx_inbound_sms.json");
    assert_eq!(webhook(&srv, &acc, &sms).await.status(), 200);
    let retry = sms.replace("\"attempt\": 1", "\"attempt\": 2");
    assert_eq!(webhook(&srv, &acc, &retry).await.status(), 200);
    let convs = conversations(&srv).await;
    assert_eq!(convs.len(), 1);
    let c = convs[0]["id"].as_str().unwrap();
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!((msgs[0]["text"].as_str(), msgs[0]["channel"].as_str()), (Some("Where is my package?"), Some("tel")));
    let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
    assert_eq!(parts["result"][0]["address"], json!({"type": "tel", "target": PEER, "name": ""}));

    assert_eq!(webhook(&srv, &acc, &fixture("telnyx_inbound_mms.json")).await.status(), 200);
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        msgs[1]["medias"][0],
        json!({"url": "https://media.telnyx.com/messaging/2024/01/23/9d8c7b6a/label.jpg", "content_type": "image/jpeg"})
    );

    let other = account(&srv, &stub, "+18445550002").await;
    assert_eq!(webhook(&srv, &other, &sms.replace("+18445550001", "+18445550002")).await.status(), 200);
    assert_eq!(conversations(&srv).await.len(), 2);

    // The messaging profile's webhook also carries messages to its other numbers: not ours.
    let elsewhere = sms.replace("+18445550001", "+18445550009").replace("7ee4241c", "8ee4241c");
    assert_eq!(webhook(&srv, &acc, &elsewhere).await.status(), 200);
    assert_eq!(messages(&srv, c).await.len(), 2);
    assert_eq!(conversations(&srv).await.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn reply_goes_out_and_delivery_events_update_it() {
    on_every_backend(reply_goes_out_and_delivery_events_update_it_on).await;
}

async fn reply_goes_out_and_delivery_events_update_it_on(backend: Backend) {
    let (srv, stub, acc, c) = with_room(backend).await;
    let api = srv.api(KEY_A);
    let mut ws = agent_ws(&srv, &c).await;

    let img = json!([{"url": "https://cdn.example.com/label.png", "content_type": "image/png"}]);
    let (_, m) =
        api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "We are on it!", "medias": img})).await;
    let req = &stub.wait_for(1).await[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/v2/messages"));
    assert_eq!(req.header("authorization"), format!("Bearer {API_KEY}"));
    assert_eq!(
        req.json(),
        json!({"from": "+18445550001", "to": PEER, "text": "We are on it!",
               "media_urls": ["https://cdn.example.com/label.png"],
               "webhook_url": srv.url(&format!("/v1.0/hooks/telnyx/{acc}"))})
    );
    let upd = next_update(&mut ws).await;
    assert_eq!(upd["message"]["deliveries"][0]["status"], "sent");
    let id = upd["message"]["deliveries"][0]["provider_message_id"].as_str().unwrap().to_string();

    let event = |s: &str| fixture("telnyx_message_finalized.json").replace("__ID__", &id).replace("__STATUS__", s);
    assert_eq!(webhook(&srv, &acc, &event("delivered")).await.status(), 200);
    let upd = next_update(&mut ws).await;
    assert_eq!(upd["message"]["status"], "delivered");
    webhook(&srv, &acc, &event("sent").replace("message.finalized", "message.sent")).await;
    let d = delivery_when(&srv, &c, m["id"].as_str().unwrap(), &["delivered"]).await;
    assert_eq!(d["provider_message_id"], id.as_str());

    // A second message fails at the carrier.
    let (_, m2) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "Still there?"})).await;
    let d = delivery_when(&srv, &c, m2["id"].as_str().unwrap(), &["sent"]).await;
    let failed = fixture("telnyx_message_finalized.json")
        .replace("__ID__", d["provider_message_id"].as_str().unwrap())
        .replace("__STATUS__", "delivery_failed")
        .replace(
            "\"errors\": []",
            r#""errors": [{"code": "40008", "title": "Undeliverable", "detail": "The message was not delivered."}]"#,
        );
    assert_eq!(webhook(&srv, &acc, &failed).await.status(), 200);
    let d = delivery_when(&srv, &c, m2["id"].as_str().unwrap(), &["failed"]).await;
    assert_eq!(d["error"], "Telnyx error 40008: Undeliverable (The message was not delivered.)");
    srv.stop().await;
}

#[tokio::test]
async fn transient_errors_are_retried_and_permanent_ones_fail() {
    on_every_backend(transient_errors_are_retried_and_permanent_ones_fail_on).await;
}

async fn transient_errors_are_retried_and_permanent_ones_fail_on(backend: Backend) {
    let (srv, stub, _, c) = with_room(backend).await;
    let api = srv.api(KEY_A);
    let path = format!("/v1.0/conversations/{c}/messages");

    stub.script([
        Answer::status(500, r#"{"errors":[{"code":"10001","title":"Inactive phone number"}]}"#),
        Answer {
            status: 429,
            headers: vec![("retry-after", "0".into())],
            body: r#"{"errors":[{"code":"10011","title":"Too many requests"}]}"#.into(),
        },
    ]);
    let d = send_and_settle(&srv, &c, "retry me").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("sent"), Some(3)));

    stub.script((0..3).map(|_| Answer::status(503, "down")));
    let d = send_and_settle(&srv, &c, "doomed").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(3)));

    let before = stub.requests().len();
    stub.script([Answer::status(422, r#"{"errors":[{"code":"40310","title":"Invalid 'to' address","detail":"The 'to' address should be in E.164 format."}]}"#)]);
    let d = send_and_settle(&srv, &c, "bad number").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(1)));
    assert_eq!(stub.requests().len(), before + 1);

    // Text over 1,600 characters is split into several messages.
    let long = "word ".repeat(700);
    let before = stub.requests().len();
    api.post(&path, json!({"text": long})).await;
    let reqs = stub.wait_for(before + 3).await;
    assert!(reqs[before..].iter().all(|r| r.json()["text"].as_str().unwrap().chars().count() <= 1600));
    srv.stop().await;
}
