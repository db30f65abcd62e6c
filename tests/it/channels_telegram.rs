//! Telegram Bot API end to end: secret-token webhooks into rooms, outbound `sendMessage` /
//! `sendPhoto` through a stub Bot API, 429 `retry_after`, failures. No delivery callbacks.

use crate::common::channels::{
    SVG, config, conversations, create_account, first_conversation, fixture, json_webhook, messages, rehosted,
    send_and_settle, settled,
};
use crate::common::stub::{Answer, Stub};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;

const BOT_TOKEN: &str = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET_TOKEN: &str = "tg-webhook-secret_0123456789";
const CHAT: &str = "111222333";

/// A stub Bot API answering `{"ok":true,"result":Message}` like the real one.
async fn telegram_stub() -> Stub {
    Stub::start(|req, i| {
        let text = req.json()["text"].as_str().unwrap_or_default().to_string();
        let body = fixture("telegram_send_response.json")
            .replace("__MESSAGE_ID__", &(2000 + i).to_string())
            .replace("__CHAT_ID__", CHAT)
            .replace("\"__TEXT__\"", &serde_json::to_string(&text).unwrap());
        Answer::status(200, &body)
    })
    .await
}

async fn account(srv: &TestServer, base: &str, bot: &str) -> String {
    let body = json!({"type": "telegram", "provider": "telegram", "name": "bot", "address": bot,
                      "credentials": {"bot_token": BOT_TOKEN, "secret_token": SECRET_TOKEN}, "api_base_url": base});
    create_account(srv, body, &[BOT_TOKEN, SECRET_TOKEN]).await["id"].as_str().unwrap().to_string()
}

async fn webhook(srv: &TestServer, account: &str, body: &str, secret: Option<&str>) -> reqwest::Response {
    let signed: Vec<_> = secret.map(|s| ("x-telegram-bot-api-secret-token", s.to_string())).into_iter().collect();
    json_webhook(srv, "telegram", account, body, &signed).await
}

/// A server on `backend` with a bot account on a fresh stub.
async fn start(backend: Backend) -> (TestServer, Stub, String) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = telegram_stub().await;
    let acc = account(&srv, &stub.url, "switchboard_support_bot").await;
    (srv, stub, acc)
}

/// A server on `backend` with a bot account, and the room an inbound text opened.
async fn with_room(backend: Backend) -> (TestServer, Stub, String, String) {
    let (srv, stub, acc) = start(backend).await;
    webhook(&srv, &acc, &fixture("telegram_update_text.json"), Some(SECRET_TOKEN)).await;
    let c = first_conversation(&srv).await;
    (srv, stub, acc, c)
}

#[tokio::test]
async fn secret_token_bad_or_missing_is_403_and_stores_nothing() {
    on_every_backend(secret_token_bad_or_missing_is_403_and_stores_nothing_on).await;
}

async fn secret_token_bad_or_missing_is_403_and_stores_nothing_on(backend: Backend) {
    let (srv, _stub, acc) = start(backend).await;
    let update = fixture("telegram_update_text.json");
    assert_eq!(webhook(&srv, &acc, &update, None).await.status(), 403);
    assert_eq!(webhook(&srv, &acc, &update, Some("guess")).await.status(), 403);
    assert_eq!(webhook(&srv, &acc, &update, Some("")).await.status(), 403);
    assert!(conversations(&srv).await.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery() {
    on_every_backend(inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery_on).await;
}

async fn inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery_on(backend: Backend) {
    let (srv, stub, acc) = start(backend).await;
    let update = fixture("telegram_update_text.json");
    assert_eq!(webhook(&srv, &acc, &update, Some(SECRET_TOKEN)).await.status(), 200);
    assert_eq!(webhook(&srv, &acc, &update, Some(SECRET_TOKEN)).await.status(), 200, "redelivery");
    let convs = conversations(&srv).await;
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["name"], "Hana");
    let c = convs[0]["id"].as_str().unwrap();
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (msgs[0]["text"].as_str(), msgs[0]["channel"].as_str()),
        (Some("Is my order shipped yet?"), Some("telegram"))
    );
    let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
    assert_eq!(parts["result"][0]["address"], json!({"type": "telegram", "target": CHAT, "name": "Hana"}));

    // A photo: a text placeholder with its caption (file ids are not URLs).
    assert_eq!(webhook(&srv, &acc, &fixture("telegram_update_photo.json"), Some(SECRET_TOKEN)).await.status(), 200);
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["text"], "[photo] The box arrived damaged");

    // An edit is acknowledged and dropped.
    let edit = json!({"update_id": 815234003, "edited_message": {"message_id": 1365, "date": 1, "edit_date": 2,
        "chat": {"id": 111222333, "type": "private"}, "text": "edited"}});
    assert_eq!(webhook(&srv, &acc, &edit.to_string(), Some(SECRET_TOKEN)).await.status(), 200);
    assert_eq!(messages(&srv, c).await.len(), 2);

    // Another bot is another account: another room.
    let other = account(&srv, &stub.url, "other_bot").await;
    assert_eq!(webhook(&srv, &other, &update, Some(SECRET_TOKEN)).await.status(), 200);
    assert_eq!(conversations(&srv).await.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn replies_go_out_as_send_message_and_send_photo() {
    on_every_backend(replies_go_out_as_send_message_and_send_photo_on).await;
}

async fn replies_go_out_as_send_message_and_send_photo_on(backend: Backend) {
    let (srv, stub, _, c) = with_room(backend).await;
    let api = srv.api(KEY_A);
    let path = format!("/v1.0/conversations/{c}/messages");

    let (_, m) = api.post(&path, json!({"text": "Shipped this morning!"})).await;
    let req = &stub.wait_for(1).await[0];
    assert_eq!(req.path, format!("/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(req.json(), json!({"chat_id": 111222333, "text": "Shipped this morning!"}));
    let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
    assert_eq!((d["status"].as_str(), d["provider_message_id"].as_str()), (Some("sent"), Some("111222333:2000")));

    let photo = json!([{"url": "https://cdn.example.com/tracking.png", "content_type": "image/png"}]);
    api.post(&path, json!({"text": "Tracking", "medias": photo})).await;
    let req = &stub.wait_for(2).await[1];
    assert_eq!(req.path, format!("/bot{BOT_TOKEN}/sendPhoto"));
    assert_eq!(
        req.json(),
        json!({"chat_id": 111222333, "photo": "https://cdn.example.com/tracking.png", "caption": "Tracking"})
    );
    srv.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_failures_keep_the_token_out() {
    on_every_backend(retry_after_is_honoured_and_failures_keep_the_token_out_on).await;
}

async fn retry_after_is_honoured_and_failures_keep_the_token_out_on(backend: Backend) {
    let (srv, stub, acc, c) = with_room(backend).await;
    let api = srv.api(KEY_A);

    // 429 with parameters.retry_after = 1 (in the body): the retry waits about a second.
    stub.script([Answer::status(429, &fixture("telegram_429.json")), Answer::status(502, "Bad Gateway")]);
    let started = std::time::Instant::now();
    let d = send_and_settle(&srv, &c, "retry me").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("sent"), Some(3)));
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "retry_after honoured");

    // 403 (bot blocked by the user) is permanent.
    let before = stub.requests().len();
    stub.script([Answer::status(
        403,
        r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
    )]);
    let d = send_and_settle(&srv, &c, "blocked").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(1)));
    assert!(d["error"].as_str().unwrap().contains("blocked"));
    assert_eq!(stub.requests().len(), before + 1);

    // Nothing listens there: retried, then failed — and the token (in the URL) is not in the error.
    let (s, _) =
        api.put(&format!("/v1.0/conversation_accounts/{acc}"), json!({"api_base_url": "http://127.0.0.1:9"})).await;
    assert_eq!(s, 200);
    let d = send_and_settle(&srv, &c, "into the void").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(3)));
    assert!(!d["error"].as_str().unwrap().contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"), "{d}");
    srv.stop().await;
}

/// A photo arrives behind our signed proxy, then is re-hosted: the largest size is
/// downloaded through the Bot API (getFile, then the file path) and stored; the message is
/// updated to our copy, and the bot token is never exposed.
#[tokio::test]
async fn photos_arrive_behind_a_signed_proxy_and_are_rehosted() {
    on_every_backend(telegram_rehost_on).await;
}

async fn telegram_rehost_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = Stub::start(|req, _| {
        if req.path.contains("/getFile") {
            assert!(req.path.contains("file_id=AgACAgIAAxkBAAIBZmTdLarge"), "largest size asked: {}", req.path);
            return Answer::status(200, r#"{"ok":true,"result":{"file_id":"x","file_path":"photos/file_7.jpg"}}"#);
        }
        assert!(req.path.ends_with("/photos/file_7.jpg"), "{}", req.path);
        Answer { status: 200, headers: vec![("content-type", "image/jpeg".into())], body: SVG.into() }
    })
    .await;
    let acc = account(&srv, &stub.url, "switchboard_support_bot").await;
    webhook(&srv, &acc, &fixture("telegram_update_photo.json"), Some(SECRET_TOKEN)).await;
    let c = first_conversation(&srv).await;
    let m = messages(&srv, &c).await.remove(0);
    let url = m["medias"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&srv.url("/v1.0/media/")) && !url.contains(BOT_TOKEN), "{url}");
    let m = rehosted(&srv, &c, 0).await;
    let url = m["medias"][0]["url"].as_str().unwrap();
    assert!(!url.contains(BOT_TOKEN), "{url}");
    let r = reqwest::get(url).await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "image/svg+xml"));
    assert_eq!(r.text().await.unwrap(), SVG);
    let last = if url.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &url[..url.len() - 1]);
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403);
    srv.stop().await;
}
