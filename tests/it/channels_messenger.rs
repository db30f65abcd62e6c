//! Facebook Messenger end to end: the GET handshake, signed webhooks into rooms (the sender's
//! name read once from the Graph API), echoes ignored, images re-hosted, replies through a stub
//! Send API, delivery and read receipts.

use crate::common::channels::{
    SVG, agent_ws, config, conversations, create_account, first_conversation, fixture, hook_url, json_webhook,
    messages, next_update, rehosted,
};
use crate::common::stub::{Answer, Recorded, Stub, eventually};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;
use switchboard::channels::meta::signature;

pub const APP_SECRET: &str = "fb-app-secret-0123456789abcdef";
pub const PAGE_TOKEN: &str = "EAAGm0PX4ZCpsBAPageToken000000000000000000ZDZD";
const VERIFY_TOKEN: &str = "fb-verify-token-31337";
pub const PAGE_ID: &str = "108123456789012";
pub const PSID: &str = "6712345678901234";

/// A stub Graph API: the user profile, the Send API, and a CDN serving attachments.
pub async fn graph_stub() -> Stub {
    Stub::start(|req: &Recorded, i| {
        if req.path.starts_with(&format!("/v17.0/{PSID}?")) {
            return Answer::status(200, &json!({"first_name": "Peter", "last_name": "Chang", "id": PSID}).to_string());
        }
        if req.path.starts_with("/cdn/") {
            return Answer { status: 200, headers: vec![("content-type", "image/jpeg".into())], body: SVG.into() };
        }
        let mid = format!("m_OUT{i:04}");
        Answer::status(200, &fixture("messenger_send_response.json").replace("__MID__", &mid))
    })
    .await
}

pub async fn account(srv: &TestServer, stub: &Stub) -> String {
    let body = json!({"type": "messenger", "provider": "messenger", "name": "Shop page", "address": PAGE_ID,
                      "credentials": {"page_access_token": PAGE_TOKEN, "app_secret": APP_SECRET,
                                      "verify_token": VERIFY_TOKEN, "page_id": PAGE_ID},
                      "api_base_url": stub.url});
    create_account(srv, body, &[APP_SECRET, PAGE_TOKEN, VERIFY_TOKEN]).await["id"].as_str().unwrap().to_string()
}

pub async fn webhook(srv: &TestServer, account: &str, body: &str) -> reqwest::Response {
    let signed = [("x-hub-signature-256", signature(APP_SECRET, body.as_bytes()))];
    json_webhook(srv, "messenger", account, body, &signed).await
}

/// Requests the stub got other than profile lookups and CDN downloads: the sends.
fn sends(stub: &Stub) -> Vec<Recorded> {
    stub.requests().into_iter().filter(|r| r.path.ends_with("/messages")).collect()
}

#[tokio::test]
async fn handshake_signature_and_an_inbound_message_with_the_senders_name() {
    on_every_backend(handshake_and_inbound_on).await;
}

async fn handshake_and_inbound_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = graph_stub().await;
    let acc = account(&srv, &stub).await;
    let hook = hook_url(&srv, "messenger", &acc);
    let url = format!("{hook}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444");
    let ok = reqwest::get(url).await.unwrap();
    assert_eq!((ok.status().as_u16(), ok.text().await.unwrap()), (200, "1158201444".to_string()));
    let bad = format!("{hook}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1");
    assert_eq!(reqwest::get(bad).await.unwrap().status(), 403);

    let body = fixture("messenger_inbound_text.json");
    let forged = [("x-hub-signature-256", signature("other-secret", body.as_bytes()))];
    assert_eq!(json_webhook(&srv, "messenger", &acc, &body, &forged).await.status(), 403);
    assert!(conversations(&srv).await.is_empty());

    assert_eq!(webhook(&srv, &acc, &body).await.status(), 200);
    assert_eq!(webhook(&srv, &acc, &body).await.status(), 200, "Meta retries");
    let c = first_conversation(&srv).await;
    let msgs = messages(&srv, &c).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (msgs[0]["text"].as_str(), msgs[0]["channel"].as_str()),
        (Some("Hello, are you open on Sunday?"), Some("messenger"))
    );
    let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
    assert_eq!(parts["result"][0]["address"], json!({"type": "messenger", "target": PSID, "name": "Peter Chang"}));
    let (_, conv) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}")).await;
    assert_eq!(conv["name"], "Peter Chang", "the room is named after the profile name");

    // An echo of our own page's send is no message; an image is a second message, re-hosted.
    assert_eq!(webhook(&srv, &acc, &fixture("messenger_echo.json")).await.status(), 200);
    let img = fixture("messenger_inbound_image.json").replace("__CDN__", &format!("{}/cdn", stub.url));
    assert_eq!(webhook(&srv, &acc, &img).await.status(), 200);
    let m = rehosted(&srv, &c, 1).await;
    assert_eq!(m["text"], "[image]");
    assert!(m["medias"][0]["url"].as_str().unwrap().starts_with(&srv.url("/v1.0/media/")), "{m}");
    assert_eq!(messages(&srv, &c).await.len(), 2, "the echo made no message");
    let lookups = stub.requests().iter().filter(|r| r.path.starts_with(&format!("/v17.0/{PSID}?"))).count();
    assert_eq!(lookups, 1, "the profile is read once, for the new peer");
    srv.stop().await;
}

#[tokio::test]
async fn replies_reach_the_send_api_and_receipts_come_back() {
    on_every_backend(replies_and_receipts_on).await;
}

async fn replies_and_receipts_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = graph_stub().await;
    let acc = account(&srv, &stub).await;
    webhook(&srv, &acc, &fixture("messenger_inbound_text.json")).await;
    let c = first_conversation(&srv).await;
    let api = srv.api(KEY_A);
    let mut ws = agent_ws(&srv, &c).await;

    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "Yes, 10 to 4."})).await;
    assert_eq!(s, 201, "{m}");
    let out = eventually(|| async { sends(&stub).first().cloned() }).await;
    assert_eq!(out.path, format!("/v17.0/{PAGE_ID}/messages"));
    assert_eq!(out.header("authorization"), format!("Bearer {PAGE_TOKEN}"));
    assert_eq!(
        out.json(),
        json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "Yes, 10 to 4."}})
    );
    let upd = next_update(&mut ws).await;
    assert_eq!(upd["message"]["deliveries"][0]["status"], "sent");
    let mid = upd["message"]["deliveries"][0]["provider_message_id"].as_str().unwrap().to_string();

    let delivered = fixture("messenger_delivery.json").replace("__MID__", &mid);
    assert_eq!(webhook(&srv, &acc, &delivered).await.status(), 200);
    assert_eq!(next_update(&mut ws).await["message"]["status"], "delivered");

    // A read watermark moves the peer's read marker to our message and tells the room.
    assert_eq!(webhook(&srv, &acc, &fixture("messenger_read.json")).await.status(), 200);
    let read = ws.next_of("read").await;
    assert_eq!(read["seq"], m["seq"], "{read}");
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    let peer = parts["result"].as_array().unwrap().iter().find(|p| p["address"]["target"] == PSID).unwrap().clone();
    assert_eq!(peer["last_read_seq"], m["seq"], "{peer}");

    // Text with an image: the text, then the image as an attachment.
    let img = json!([{"url": "https://cdn.example.com/hours.png", "content_type": "image/png"}]);
    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "Our hours", "medias": img})).await;
    let out = eventually(|| async { (sends(&stub).len() >= 3).then(|| sends(&stub)) }).await;
    assert_eq!(out[1].json()["message"], json!({"text": "Our hours"}));
    assert_eq!(
        out[2].json()["message"],
        json!({"attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/hours.png", "is_reusable": true}}})
    );
    srv.stop().await;
}

/// Contact matching (`match: contact`): a known contact who texted first and then writes on
/// Messenger lands in the same room, and the reply follows them to Messenger.
#[tokio::test]
async fn a_known_contact_writing_on_messenger_joins_their_room() {
    on_every_backend(contact_match_on).await;
}

async fn contact_match_on(backend: Backend) {
    use crate::contacts::{id, participants, sms, twilio};
    let srv = TestServer::start_on(backend, config()).await;
    let api = srv.api(KEY_A);
    let twilio_api = Stub::start(|_, i| {
        Answer::status(201, &fixture("twilio_send_response.json").replace("__SID__", &format!("SM{:032x}", i + 1)))
    })
    .await;
    let stub = graph_stub().await;
    let sms_acc = twilio(&srv, &twilio_api.url, "+15005550006", "contact").await;
    let acc = account(&srv, &stub).await;
    let (s, a) = api.put(&format!("/v1.0/conversation_accounts/{acc}"), json!({"match": "contact"})).await;
    assert_eq!(s, 200, "{a}");
    let person = json!({"name": "Peter Chang", "addresses": [{"type": "tel", "target": "+16505550111"},
                                                             {"type": "messenger", "target": PSID}]});
    let (s, c) = api.post("/v1.0/contacts", person).await;
    assert_eq!(s, 201, "{c}");

    sms(&srv, &sms_acc, "+16505550111", "SM20", "texting first").await;
    assert_eq!(webhook(&srv, &acc, &fixture("messenger_inbound_text.json")).await.status(), 200);
    let convs = conversations(&srv).await;
    assert_eq!(convs.len(), 1, "{backend:?}: one room for one person: {convs:?}");
    let room = id(&convs[0]);
    let texts: Vec<String> =
        messages(&srv, &room).await.iter().map(|m| m["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts, ["texting first", "Hello, are you open on Sunday?"]);
    let people = participants(&api, &room).await;
    assert_eq!((people.len(), people[0]["contact_id"].as_str()), (1, c["id"].as_str()), "{people:?}");

    let (s, m) = api.post(&format!("/v1.0/conversations/{room}/messages"), json!({"text": "We are"})).await;
    assert_eq!((s, m["deliveries"][0]["account_id"].as_str()), (201, Some(acc.as_str())), "{m}");
    let out = eventually(|| async { sends(&stub).first().cloned() }).await;
    assert_eq!(out.json()["recipient"]["id"], PSID);
    srv.stop().await;
}
