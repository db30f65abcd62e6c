//! Telegram Bot API end to end: secret-token webhooks into rooms, outbound `sendMessage` /
//! `sendPhoto` through a stub Bot API, 429 `retry_after`, failures. No delivery callbacks.

mod common;

use common::stub::{Answer, Stub, eventually};
use common::{BACKENDS, Backend, KEY_A, TestServer};
use serde_json::{Value, json};

const BOT_TOKEN: &str = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET_TOKEN: &str = "tg-webhook-secret_0123456789";
const CHAT: &str = "111222333";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap().trim().to_string()
}

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

fn config() -> switchboard::Config {
    let mut c = common::test_config();
    c.channels.retry_base_ms = 10;
    c.channels.retry_max_ms = 50;
    c.channels.max_attempts = 3;
    c
}

async fn account(srv: &TestServer, base: &str, bot: &str) -> String {
    let (s, a) = srv
        .api(KEY_A)
        .post(
            "/v1.0/conversation_accounts",
            json!({"type": "telegram", "provider": "telegram", "name": "bot", "address": bot,
                   "credentials": {"bot_token": BOT_TOKEN, "secret_token": SECRET_TOKEN}, "api_base_url": base}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert!(!a.to_string().contains(BOT_TOKEN) && !a.to_string().contains(SECRET_TOKEN), "{a}");
    a["id"].as_str().unwrap().to_string()
}

async fn webhook(srv: &TestServer, account: &str, body: &str, secret: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(srv.url(&format!("/v1.0/hooks/telegram/{account}")))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = secret {
        req = req.header("x-telegram-bot-api-secret-token", s);
    }
    req.send().await.unwrap()
}

async fn conversations(srv: &TestServer) -> Vec<Value> {
    srv.api(KEY_A).get("/v1.0/conversations").await.1["result"].as_array().unwrap().clone()
}

async fn messages(srv: &TestServer, c: &str) -> Vec<Value> {
    srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/messages")).await.1["result"].as_array().unwrap().clone()
}

/// Polls a message until its first delivery is `sent` or `failed`.
async fn settled(srv: &TestServer, c: &str, id: &str) -> Value {
    let api = srv.api(KEY_A);
    let path = format!("/v1.0/conversations/{c}/messages/{id}");
    eventually(|| async {
        let d = api.get(&path).await.1["deliveries"][0].clone();
        matches!(d["status"].as_str(), Some("sent" | "failed")).then_some(d)
    })
    .await
}

#[tokio::test]
async fn secret_token_bad_or_missing_is_403_and_stores_nothing() {
    for backend in BACKENDS {
        secret_token_bad_or_missing_is_403_and_stores_nothing_on(backend).await;
    }
}

async fn secret_token_bad_or_missing_is_403_and_stores_nothing_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = telegram_stub().await;
    let acc = account(&srv, &stub.url, "switchboard_support_bot").await;
    let update = fixture("telegram_update_text.json");
    assert_eq!(webhook(&srv, &acc, &update, None).await.status(), 403);
    assert_eq!(webhook(&srv, &acc, &update, Some("guess")).await.status(), 403);
    assert_eq!(webhook(&srv, &acc, &update, Some("")).await.status(), 403);
    assert!(conversations(&srv).await.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery() {
    for backend in BACKENDS {
        inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery_on(backend).await;
    }
}

async fn inbound_creates_a_room_then_reuses_it_and_dedupes_redelivery_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = telegram_stub().await;
    let acc = account(&srv, &stub.url, "switchboard_support_bot").await;
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
    for backend in BACKENDS {
        replies_go_out_as_send_message_and_send_photo_on(backend).await;
    }
}

async fn replies_go_out_as_send_message_and_send_photo_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = telegram_stub().await;
    let acc = account(&srv, &stub.url, "switchboard_support_bot").await;
    webhook(&srv, &acc, &fixture("telegram_update_text.json"), Some(SECRET_TOKEN)).await;
    let c = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();
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
    for backend in BACKENDS {
        retry_after_is_honoured_and_failures_keep_the_token_out_on(backend).await;
    }
}

async fn retry_after_is_honoured_and_failures_keep_the_token_out_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = telegram_stub().await;
    let acc = account(&srv, &stub.url, "switchboard_support_bot").await;
    webhook(&srv, &acc, &fixture("telegram_update_text.json"), Some(SECRET_TOKEN)).await;
    let c = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();
    let api = srv.api(KEY_A);
    let path = format!("/v1.0/conversations/{c}/messages");

    // 429 with parameters.retry_after = 1 (in the body): the retry waits about a second.
    stub.script([Answer::status(429, &fixture("telegram_429.json")), Answer::status(502, "Bad Gateway")]);
    let started = std::time::Instant::now();
    let (_, m) = api.post(&path, json!({"text": "retry me"})).await;
    let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("sent"), Some(3)));
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "retry_after honoured");

    // 403 (bot blocked by the user) is permanent.
    let before = stub.requests().len();
    stub.script([Answer::status(
        403,
        r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
    )]);
    let (_, m) = api.post(&path, json!({"text": "blocked"})).await;
    let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(1)));
    assert!(d["error"].as_str().unwrap().contains("blocked"));
    assert_eq!(stub.requests().len(), before + 1);

    // Nothing listens there: retried, then failed — and the token (in the URL) is not in the error.
    let (s, _) =
        api.put(&format!("/v1.0/conversation_accounts/{acc}"), json!({"api_base_url": "http://127.0.0.1:9"})).await;
    assert_eq!(s, 200);
    let (_, m) = api.post(&path, json!({"text": "into the void"})).await;
    let d = settled(&srv, &c, m["id"].as_str().unwrap()).await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(3)));
    assert!(!d["error"].as_str().unwrap().contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"), "{d}");
    srv.stop().await;
}
