//! WhatsApp Cloud API end to end: the GET verification handshake, signed webhooks into rooms,
//! outbound through a stub Graph API, status webhooks, retries.

use crate::common::channels::{
    SVG, agent_ws, config, conversations, create_account, delivery_when, first_conversation, fixture, hook_url,
    json_webhook, messages, next_update, post, rehosted, send_and_settle, settled,
};
use crate::common::stub::{Answer, Stub};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;
use switchboard::channels::whatsapp::signature;

const APP_SECRET: &str = "wa-app-secret-0123456789abcdef";
const ACCESS_TOKEN: &str = "EAAJB0000000000000000000000000000000000000000ZDZD";
const VERIFY_TOKEN: &str = "wa-verify-token-31337";
const NUMBER_ID: &str = "106540352242922";
const PEER: &str = "16505551234";

/// A stub Graph API answering the messages endpoint like the real one.
async fn graph_stub() -> Stub {
    Stub::start(|_, i| {
        let wamid = format!("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI{i:04}");
        Answer::status(200, &fixture("whatsapp_send_response.json").replace("__WAMID__", &wamid))
    })
    .await
}

async fn account(srv: &TestServer, stub: &Stub, number_id: &str) -> String {
    let body = json!({"type": "whatsapp", "provider": "whatsapp", "name": "WA support", "address": "+15550783881",
                      "credentials": {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
                                      "verify_token": VERIFY_TOKEN, "phone_number_id": number_id},
                      "api_base_url": stub.url});
    create_account(srv, body, &[APP_SECRET, ACCESS_TOKEN, VERIFY_TOKEN]).await["id"].as_str().unwrap().to_string()
}

async fn webhook(srv: &TestServer, account: &str, body: &str, secret: Option<&str>) -> reqwest::Response {
    let signed: Vec<_> = secret.map(|s| ("x-hub-signature-256", signature(s, body.as_bytes()))).into_iter().collect();
    json_webhook(srv, "whatsapp", account, body, &signed).await
}

/// A server on `backend` with a WhatsApp account on a fresh stub.
async fn start(backend: Backend) -> (TestServer, Stub, String) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = graph_stub().await;
    let acc = account(&srv, &stub, NUMBER_ID).await;
    (srv, stub, acc)
}

/// A server on `backend` with a WhatsApp account, and the room an inbound text opened.
async fn with_room(backend: Backend) -> (TestServer, Stub, String, String) {
    let (srv, stub, acc) = start(backend).await;
    webhook(&srv, &acc, &fixture("whatsapp_inbound_text.json"), Some(APP_SECRET)).await;
    let c = first_conversation(&srv).await;
    (srv, stub, acc, c)
}

#[tokio::test]
async fn verification_handshake_and_signatures() {
    on_every_backend(verification_handshake_and_signatures_on).await;
}

async fn verification_handshake_and_signatures_on(backend: Backend) {
    let (srv, _stub, acc) = start(backend).await;
    let hook = hook_url(&srv, "whatsapp", &acc);
    let get = |token: &str| {
        let url = format!("{hook}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444");
        async move { reqwest::get(url).await.unwrap() }
    };
    let ok = get(VERIFY_TOKEN).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    assert_eq!(get("wrong").await.status(), 403);
    assert_eq!(reqwest::get(&hook).await.unwrap().status(), 403, "no hub params");

    let body = fixture("whatsapp_inbound_text.json");
    assert_eq!(webhook(&srv, &acc, &body, None).await.status(), 403);
    assert_eq!(webhook(&srv, &acc, &body, Some("other-secret")).await.status(), 403);
    let signed = [("x-hub-signature-256", signature(APP_SECRET, body.as_bytes()))];
    let r = post(&hook, &signed, &body.replace("color", "size")).await;
    assert_eq!(r.status(), 403, "signature over another body");
    assert!(conversations(&srv).await.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn inbound_creates_a_room_then_reuses_it_and_dedupes_retries() {
    on_every_backend(inbound_creates_a_room_then_reuses_it_and_dedupes_retries_on).await;
}

async fn inbound_creates_a_room_then_reuses_it_and_dedupes_retries_on(backend: Backend) {
    let (srv, stub, acc) = start(backend).await;
    let text = fixture("whatsapp_inbound_text.json");
    assert_eq!(webhook(&srv, &acc, &text, Some(APP_SECRET)).await.status(), 200);
    assert_eq!(webhook(&srv, &acc, &text, Some(APP_SECRET)).await.status(), 200, "Meta retries");
    let convs = conversations(&srv).await;
    assert_eq!(convs.len(), 1);
    let c = convs[0]["id"].as_str().unwrap();
    let msgs = messages(&srv, c).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (msgs[0]["text"].as_str(), msgs[0]["channel"].as_str()),
        (Some("Does it come in another color?"), Some("whatsapp"))
    );
    let (_, parts) = srv.api(KEY_A).get(&format!("/v1.0/conversations/{c}/participants")).await;
    // The wa_id is stored in E.164 like every phone address (sends use the bare digits).
    let e164 = format!("+{PEER}");
    assert_eq!(parts["result"][0]["address"], json!({"type": "whatsapp", "target": e164, "name": "Sheena Nelson"}));

    assert_eq!(webhook(&srv, &acc, &fixture("whatsapp_inbound_image.json"), Some(APP_SECRET)).await.status(), 200);
    assert_eq!(conversations(&srv).await.len(), 1);
    assert_eq!(messages(&srv, c).await[1]["text"], "[image] This one, in blue");

    // Another business number is another account: another room. And a webhook for a number
    // that is not the account's (Meta sends one webhook per app) is skipped.
    let other = account(&srv, &stub, "106540352242999").await;
    let theirs = text.replace(NUMBER_ID, "106540352242999");
    assert_eq!(webhook(&srv, &other, &theirs, Some(APP_SECRET)).await.status(), 200);
    assert_eq!(conversations(&srv).await.len(), 2);
    let stray = text.replace(NUMBER_ID, "106540352240000").replace("QzQTRB", "QzQTRC");
    assert_eq!(webhook(&srv, &acc, &stray, Some(APP_SECRET)).await.status(), 200);
    assert_eq!(messages(&srv, c).await.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn reply_goes_out_and_status_webhooks_update_it() {
    on_every_backend(reply_goes_out_and_status_webhooks_update_it_on).await;
}

async fn reply_goes_out_and_status_webhooks_update_it_on(backend: Backend) {
    let (srv, stub, acc, c) = with_room(backend).await;
    let api = srv.api(KEY_A);
    let mut ws = agent_ws(&srv, &c).await;

    let (_, m) =
        api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "Yes, in blue and green."})).await;
    let req = &stub.wait_for(1).await[0];
    assert_eq!(req.path, format!("/v17.0/{NUMBER_ID}/messages"));
    assert_eq!(req.header("authorization"), format!("Bearer {ACCESS_TOKEN}"));
    assert_eq!(
        req.json(),
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": PEER,
               "type": "text", "text": {"body": "Yes, in blue and green."}})
    );
    let upd = next_update(&mut ws).await;
    assert_eq!(upd["message"]["deliveries"][0]["status"], "sent");
    let wamid = upd["message"]["deliveries"][0]["provider_message_id"].as_str().unwrap().to_string();
    assert!(wamid.starts_with("wamid."));

    let status = |s: &str| fixture("whatsapp_status.json").replace("__WAMID__", &wamid).replace("__STATUS__", s);
    assert_eq!(webhook(&srv, &acc, &status("delivered"), Some(APP_SECRET)).await.status(), 200);
    let upd = next_update(&mut ws).await;
    assert_eq!(upd["message"]["status"], "delivered");
    // "read" maps to delivered too; a late "sent" never moves it back.
    webhook(&srv, &acc, &status("read"), Some(APP_SECRET)).await;
    webhook(&srv, &acc, &status("sent"), Some(APP_SECRET)).await;
    let (_, stored) = api.get(&format!("/v1.0/conversations/{c}/messages/{}", m["id"].as_str().unwrap())).await;
    assert_eq!(stored["deliveries"][0]["status"], "delivered");

    // An image goes as an image message with its caption; a failure report names the error.
    let img = json!([{"url": "https://cdn.example.com/blue.jpg", "content_type": "image/jpeg"}]);
    let (_, m2) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "Blue", "medias": img})).await;
    let req = &stub.wait_for(2).await[1];
    assert_eq!(
        (req.json()["type"].as_str(), &req.json()["image"]),
        (Some("image"), &json!({"link": "https://cdn.example.com/blue.jpg", "caption": "Blue"}))
    );
    let d = settled(&srv, &c, m2["id"].as_str().unwrap()).await;
    let failed =
        fixture("whatsapp_status_failed.json").replace("__WAMID__", d["provider_message_id"].as_str().unwrap());
    assert_eq!(webhook(&srv, &acc, &failed, Some(APP_SECRET)).await.status(), 200);
    let d = delivery_when(&srv, &c, m2["id"].as_str().unwrap(), &["failed"]).await;
    assert_eq!(d["error"], "WhatsApp error 131047: Re-engagement message");
    srv.stop().await;
}

#[tokio::test]
async fn throttling_is_retried_and_permanent_errors_fail() {
    on_every_backend(throttling_is_retried_and_permanent_errors_fail_on).await;
}

async fn throttling_is_retried_and_permanent_errors_fail_on(backend: Backend) {
    let (srv, stub, _, c) = with_room(backend).await;

    // 500, then Meta's throttling error (HTTP 400, code 130429), then success.
    let throttled = r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}"#;
    stub.script([Answer::status(500, "oops"), Answer::status(400, throttled)]);
    let d = send_and_settle(&srv, &c, "retry me").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("sent"), Some(3)));

    stub.script((0..3).map(|_| Answer::status(503, "down")));
    let d = send_and_settle(&srv, &c, "doomed").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(3)));

    let before = stub.requests().len();
    let invalid =
        r#"{"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100,"fbtrace_id":"AbC"}}"#;
    stub.script([Answer::status(400, invalid)]);
    let d = send_and_settle(&srv, &c, "bad").await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(1)));
    assert!(d["error"].as_str().unwrap().contains("Invalid parameter"));
    assert_eq!(stub.requests().len(), before + 1);
    srv.stop().await;
}

/// An image arrives behind our signed proxy, then is re-hosted: the media id is resolved
/// through the Graph API, downloaded with the account's token and stored; the message is
/// updated to our stored copy, and no provider URL is exposed.
#[tokio::test]
async fn images_arrive_behind_a_signed_proxy_and_are_rehosted() {
    on_every_backend(whatsapp_rehost_on).await;
}

async fn whatsapp_rehost_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = Stub::start(|req, _| {
        assert_eq!(req.header("authorization"), format!("Bearer {ACCESS_TOKEN}"));
        if req.path.ends_with("/v17.0/1003383421387256") {
            let url = format!("http://{}/blob/1003383421387256", req.header("host"));
            return Answer::status(
                200,
                &json!({"url": url, "mime_type": "image/jpeg", "id": "1003383421387256"}).to_string(),
            );
        }
        assert_eq!(req.path, "/blob/1003383421387256");
        Answer { status: 200, headers: vec![("content-type", "image/jpeg".into())], body: SVG.into() }
    })
    .await;
    let acc = account(&srv, &stub, NUMBER_ID).await;
    webhook(&srv, &acc, &fixture("whatsapp_inbound_image.json"), Some(APP_SECRET)).await;
    let c = first_conversation(&srv).await;
    let m = messages(&srv, &c).await.remove(0);
    let url = m["medias"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&srv.url("/v1.0/media/")), "{url}");
    let m = rehosted(&srv, &c, 0).await;
    let media = &m["medias"][0];
    let url = media["url"].as_str().unwrap();
    assert!(url.starts_with(&srv.url(&format!("/v1.0/media/{}?", media["media_id"].as_str().unwrap()))), "{url}");
    assert_eq!(media["content_type"], "image/svg+xml", "the type is sniffed, not the provider's");
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), SVG);
    let last = if url.ends_with('0') { '1' } else { '0' };
    assert_eq!(reqwest::get(format!("{}{last}", &url[..url.len() - 1])).await.unwrap().status(), 403);
    srv.stop().await;
}
