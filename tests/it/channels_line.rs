//! LINE Messaging API end to end: signed webhooks into rooms, outbound through a stub push API,
//! retries. LINE has no delivery callbacks, so a delivery ends at `sent`.

use crate::common::channels::{
    SVG, agent_ws, config, conversations, create_account, first_conversation, fixture, json_webhook, messages,
    next_update, post_webhook, rehosted, send_and_settle,
};
use crate::common::stub::{Answer, Stub};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;
use switchboard::channels::line::signature;

const SECRET: &str = "line-channel-secret-0123456789ab";
const TOKEN: &str = "line-channel-access-token-abcdefghijklmnop";
const USER: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

/// A stub LINE push API answering like the real one (200 + sentMessages).
async fn line_stub() -> Stub {
    Stub::start(|req, i| {
        if req.path.ends_with("/content") {
            return Answer { status: 200, headers: vec![("content-type", "image/jpeg".into())], body: SVG.into() };
        }
        Answer::status(200, &fixture("line_push_response.json").replace("__ID__", &format!("{}", 481000 + i)))
    })
    .await
}

async fn account(srv: &TestServer, stub: &Stub, channel: &str) -> String {
    let body = json!({"type": "line", "provider": "line", "name": "LINE support", "address": channel,
                      "credentials": {"channel_secret": SECRET, "channel_access_token": TOKEN},
                      "api_base_url": stub.url});
    create_account(srv, body, &[SECRET, TOKEN]).await["id"].as_str().unwrap().to_string()
}

/// Posts a webhook the way LINE does, signed (or not) with `secret`.
async fn webhook(srv: &TestServer, account: &str, body: &str, secret: Option<&str>) -> reqwest::Response {
    let signed: Vec<_> = secret.map(|s| ("x-line-signature", signature(s, body.as_bytes()))).into_iter().collect();
    json_webhook(srv, "line", account, body, &signed).await
}

/// A server on `backend` with a LINE account on a fresh stub.
async fn start(backend: Backend) -> (TestServer, Stub, String) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = line_stub().await;
    let acc = account(&srv, &stub, "1650000001").await;
    (srv, stub, acc)
}

/// A server on `backend` with a LINE account, and the room an inbound text opened.
async fn with_room(backend: Backend) -> (TestServer, Stub, String) {
    let (srv, stub, acc) = start(backend).await;
    webhook(&srv, &acc, &fixture("line_inbound_text.json"), Some(SECRET)).await;
    let c = first_conversation(&srv).await;
    (srv, stub, c)
}

#[tokio::test]
async fn signature_bad_or_missing_is_403_and_stores_nothing() {
    on_every_backend(signature_bad_or_missing_is_403_and_stores_nothing_on).await;
}

async fn signature_bad_or_missing_is_403_and_stores_nothing_on(backend: Backend) {
    let (srv, _stub, acc) = start(backend).await;
    let body = fixture("line_inbound_text.json");
    assert_eq!(webhook(&srv, &acc, &body, None).await.status(), 403);
    assert_eq!(webhook(&srv, &acc, &body, Some("another-secret")).await.status(), 403);
    let signed = [("x-line-signature", signature(SECRET, body.as_bytes()))];
    let r = post_webhook(&srv, "line", &acc, &signed, &body.replace("lamp", "sofa")).await;
    assert_eq!(r.status(), 403, "signature over another body");
    assert!(conversations(&srv).await.is_empty());
    // LINE's "Verify" button sends an empty event list: fine, nothing to store.
    let ping = r#"{"destination":"U3c28a70ed7c5e7d79fbdbf5dfc62ed19","events":[]}"#;
    assert_eq!(webhook(&srv, &acc, ping, Some(SECRET)).await.status(), 200);
    assert!(conversations(&srv).await.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery() {
    on_every_backend(inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery_on).await;
}

async fn inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery_on(backend: Backend) {
    let (srv, stub, acc) = start(backend).await;
    let text = fixture("line_inbound_text.json");
    assert_eq!(webhook(&srv, &acc, &text, Some(SECRET)).await.status(), 200);
    // LINE redelivers the same event (isRedelivery: true): still one message.
    let again = text.replace("\"isRedelivery\": false", "\"isRedelivery\": true");
    assert_eq!(webhook(&srv, &acc, &again, Some(SECRET)).await.status(), 200);
    let convs = conversations(&srv).await;
    assert_eq!(convs.len(), 1);
    let c = convs[0]["id"].as_str().unwrap();
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["text"], "Hello, I ordered a lamp yesterday");
    assert_eq!(msgs[0]["channel"], "line");
    let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
    assert_eq!(parts["result"][0]["address"], json!({"type": "line", "target": USER, "name": ""}));

    // follow (ignored) + image + sticker from the same user: same room, two more messages.
    assert_eq!(webhook(&srv, &acc, &fixture("line_inbound_media.json"), Some(SECRET)).await.status(), 200);
    assert_eq!(conversations(&srv).await.len(), 1);
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 3);
    assert!(msgs[1]["medias"][0]["url"].as_str().unwrap().starts_with(&srv.url("/v1.0/media/")), "{}", msgs[1]);
    // The image is re-hosted (its type sniffed from the bytes LINE served).
    assert_eq!(rehosted(&srv, c, 1).await["medias"][0]["content_type"], "image/svg+xml");
    assert_eq!(msgs[2]["text"], "[sticker]");
    assert_eq!(
        msgs[2]["medias"][0]["url"],
        "https://stickershop.line-scdn.net/stickershop/v1/sticker/52002734/android/sticker.png"
    );

    // Another LINE channel is another account: another room for the same user.
    let other = account(&srv, &stub, "1650000002").await;
    assert_eq!(webhook(&srv, &other, &text, Some(SECRET)).await.status(), 200);
    assert_eq!(conversations(&srv).await.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn reply_goes_out_through_the_push_api() {
    on_every_backend(reply_goes_out_through_the_push_api_on).await;
}

async fn reply_goes_out_through_the_push_api_on(backend: Backend) {
    let (srv, stub, c) = with_room(backend).await;
    let api = srv.api(KEY_A);
    let mut ws = agent_ws(&srv, &c).await;

    let medias = json!([{"url": "https://cdn.example.com/lamp.jpg", "content_type": "image/jpeg"},
                        {"url": "https://cdn.example.com/manual.pdf", "content_type": "application/pdf"}]);
    let (s, m) = api
        .post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "We are on it!", "medias": medias}))
        .await;
    assert_eq!(s, 201, "{m}");
    let req = &stub.wait_for(1).await[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/v2/bot/message/push"));
    assert_eq!(req.header("authorization"), format!("Bearer {TOKEN}"));
    assert!(uuid::Uuid::parse_str(req.header("x-line-retry-key")).is_ok(), "retry key is a UUID");
    assert_eq!(
        req.json(),
        json!({"to": USER, "messages": [
            {"type": "text", "text": "We are on it!"},
            {"type": "text", "text": "https://cdn.example.com/manual.pdf"},
            {"type": "image", "originalContentUrl": "https://cdn.example.com/lamp.jpg", "previewImageUrl": "https://cdn.example.com/lamp.jpg"},
        ]})
    );
    let upd = next_update(&mut ws).await;
    assert_eq!(upd["message"]["deliveries"][0]["status"], "sent");
    assert_eq!(upd["message"]["deliveries"][0]["provider_message_id"], "481000");
    assert_eq!(upd["message"]["status"], "sent");

    // Text over 5,000 characters goes as several pushes.
    let long = "word ".repeat(1500);
    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": long})).await;
    let reqs = stub.wait_for(3).await;
    let pieces: Vec<String> =
        reqs[1..].iter().map(|r| r.json()["messages"][0]["text"].as_str().unwrap().to_string()).collect();
    assert!(pieces.iter().all(|p| p.chars().count() <= 5000));
    assert_eq!(pieces.join(" ").split_whitespace().count(), 1500);
    srv.stop().await;
}

#[tokio::test]
async fn transient_errors_are_retried_and_permanent_ones_fail() {
    on_every_backend(transient_errors_are_retried_and_permanent_ones_fail_on).await;
}

async fn transient_errors_are_retried_and_permanent_ones_fail_on(backend: Backend) {
    let (srv, stub, c) = with_room(backend).await;

    stub.script([
        Answer::status(500, r#"{"message":"An error occurred in the server"}"#),
        Answer {
            status: 429,
            headers: vec![("retry-after", "0".into())],
            body: r#"{"message":"Too Many Requests"}"#.into(),
        },
    ]);
    let d = send_and_settle(&srv, &c, "retry me").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("sent"), Some(3)));
    let keys: Vec<String> = stub.requests().iter().map(|r| r.header("x-line-retry-key").to_string()).collect();
    assert!(keys.len() == 3 && keys.iter().all(|k| uuid::Uuid::parse_str(k).is_ok()), "{keys:?}");

    stub.script((0..3).map(|_| Answer::status(503, "unavailable")));
    let d = send_and_settle(&srv, &c, "doomed").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(3)));
    assert!(d["error"].as_str().unwrap().contains("503"));

    let before = stub.requests().len();
    stub.script([Answer::status(
        400,
        r#"{"message":"The request body has 1 error(s)","details":[{"message":"Invalid user ID","property":"to"}]}"#,
    )]);
    let d = send_and_settle(&srv, &c, "bad user").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(1)));
    assert!(d["error"].as_str().unwrap().contains("Invalid user ID"));
    assert_eq!(stub.requests().len(), before + 1);

    // 409: LINE already accepted this retry key, so the message did go out.
    stub.script([Answer::status(
        409,
        r#"{"message":"The retry key is already accepted","sentMessages":[{"id":"777","quoteToken":"x"}]}"#,
    )]);
    let d = send_and_settle(&srv, &c, "already there").await;
    assert_eq!((d["status"].as_str(), d["provider_message_id"].as_str()), (Some("sent"), Some("777")));
    srv.stop().await;
}

/// An image a user sends is LINE content only the channel token opens: the message first
/// carries our signed proxy link, then the content is re-hosted (fetched with the token and
/// stored) and the message updated to our stored copy.
#[tokio::test]
async fn images_arrive_behind_a_signed_proxy_and_are_rehosted() {
    on_every_backend(line_rehost_on).await;
}

async fn line_rehost_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = Stub::start(|req, _| {
        assert_eq!(req.header("authorization"), format!("Bearer {TOKEN}"));
        assert_eq!(req.path, "/v2/bot/message/468789577898262531/content");
        Answer { status: 200, headers: vec![("content-type", "image/jpeg".into())], body: SVG.into() }
    })
    .await;
    let acc = account(&srv, &stub, "1650000001").await;
    assert_eq!(webhook(&srv, &acc, &fixture("line_inbound_media.json"), Some(SECRET)).await.status(), 200);
    let c = first_conversation(&srv).await;
    let m = messages(&srv, &c).await.remove(0);
    let url = m["medias"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&srv.url("/v1.0/media/")) && !url.contains("api-data.line.me"), "{url}");
    let m = rehosted(&srv, &c, 0).await;
    let url = m["medias"][0]["url"].as_str().unwrap();
    let fetched = stub.requests().len();
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(r.text().await.unwrap(), SVG);
    assert_eq!(stub.requests().len(), fetched, "a stored copy is served without asking LINE");
    let last = if url.ends_with('0') { '1' } else { '0' };
    assert_eq!(reqwest::get(format!("{}{last}", &url[..url.len() - 1])).await.unwrap().status(), 403, "tampered");
    srv.stop().await;
}
