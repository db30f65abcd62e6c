//! Instagram Direct end to end: signed webhooks into rooms (the sender's name read once from
//! the Graph API), replies through a stub Instagram messaging API, read receipts by message.

use crate::common::channels::{
    agent_ws, config, create_account, first_conversation, fixture, json_webhook, messages, next_update,
};
use crate::common::stub::{Answer, Recorded, Stub, eventually};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;
use switchboard::channels::meta::signature;

const APP_SECRET: &str = "ig-app-secret-0123456789abcdef";
const TOKEN: &str = "IGQWRInstagramToken0000000000000000000000000";
const IG_ID: &str = "17841400008460056";
const IGSID: &str = "1254459154682919";

async fn graph_stub() -> Stub {
    Stub::start(|req: &Recorded, i| {
        if req.path.starts_with(&format!("/v17.0/{IGSID}?")) {
            return Answer::status(200, &json!({"name": "Ada Lovelace", "username": "ada.l", "id": IGSID}).to_string());
        }
        Answer::status(200, &fixture("instagram_send_response.json").replace("__MID__", &format!("aWdfOUT{i:04}")))
    })
    .await
}

async fn webhook(srv: &TestServer, account: &str, body: &str) -> reqwest::Response {
    let signed = [("x-hub-signature-256", signature(APP_SECRET, body.as_bytes()))];
    json_webhook(srv, "instagram", account, body, &signed).await
}

#[tokio::test]
async fn a_direct_message_lands_and_the_reply_reaches_instagram() {
    on_every_backend(instagram_on).await;
}

async fn instagram_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = graph_stub().await;
    let body = json!({"type": "instagram", "provider": "instagram", "name": "Shop IG", "address": "@shop",
                      "credentials": {"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": "v", "instagram_id": IG_ID},
                      "api_base_url": stub.url});
    let acc = create_account(&srv, body, &[APP_SECRET, TOKEN]).await["id"].as_str().unwrap().to_string();
    let text = fixture("instagram_inbound_text.json");
    let unsigned = json_webhook(&srv, "instagram", &acc, &text, &[]).await;
    assert_eq!(unsigned.status(), 403);
    assert_eq!(webhook(&srv, &acc, &text).await.status(), 200);
    let c = first_conversation(&srv).await;
    assert_eq!(messages(&srv, &c).await[0]["text"], "Is the blue jacket still available?");
    let api = srv.api(KEY_A);
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    assert_eq!(parts["result"][0]["address"], json!({"type": "instagram", "target": IGSID, "name": "Ada Lovelace"}));

    let mut ws = agent_ws(&srv, &c).await;
    let (_, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "It is!"})).await;
    let out = eventually(|| async { stub.requests().into_iter().find(|r| r.path.ends_with("/messages")) }).await;
    assert_eq!(out.path, format!("/v17.0/{IG_ID}/messages"));
    assert_eq!(out.header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(
        out.json(),
        json!({"recipient": {"id": IGSID}, "messaging_type": "RESPONSE", "message": {"text": "It is!"}})
    );
    let upd = next_update(&mut ws).await;
    let mid = upd["message"]["deliveries"][0]["provider_message_id"].as_str().unwrap().to_string();

    // Instagram reports reads by message: delivered, and the read marker moves.
    assert_eq!(webhook(&srv, &acc, &fixture("instagram_read.json").replace("__MID__", &mid)).await.status(), 200);
    assert_eq!(next_update(&mut ws).await["message"]["status"], "delivered");
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    let peer = parts["result"].as_array().unwrap().iter().find(|p| p["address"]["target"] == IGSID).unwrap().clone();
    assert_eq!(peer["last_read_seq"], m["seq"], "{peer}");
    srv.stop().await;
}
