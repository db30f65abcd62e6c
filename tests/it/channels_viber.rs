//! Viber end to end: `X-Viber-Content-Signature`, messages into rooms (the name comes with
//! them), pictures re-hosted, replies through a stub `send_message`, delivered/seen/failed
//! callbacks, Viber's error statuses.

use crate::common::channels::{
    SVG, agent_ws, config, create_account, first_conversation, fixture, json_webhook, messages, next_update, rehosted,
    send_and_settle,
};
use crate::common::stub::{Answer, Recorded, Stub};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;
use switchboard::channels::viber::signature;

const AUTH_TOKEN: &str = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9";
const PEER: &str = "01234567890A=";

async fn viber_stub() -> Stub {
    Stub::start(|req: &Recorded, i| {
        if req.path.starts_with("/cdn/") {
            return Answer { status: 200, headers: vec![("content-type", "image/jpeg".into())], body: SVG.into() };
        }
        Answer::status(
            200,
            &fixture("viber_send_response.json")
                .replace("__TOKEN__", &format!("{}", 5741311803571721000_u64 + i as u64)),
        )
    })
    .await
}

async fn webhook(srv: &TestServer, account: &str, body: &str) -> reqwest::Response {
    let signed = [("x-viber-content-signature", signature(AUTH_TOKEN, body.as_bytes()))];
    json_webhook(srv, "viber", account, body, &signed).await
}

#[tokio::test]
async fn viber_messages_replies_and_callbacks() {
    on_every_backend(viber_on).await;
}

async fn viber_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = viber_stub().await;
    let body = json!({"type": "viber", "provider": "viber", "name": "Shop bot", "address": "Shop",
                      "credentials": {"auth_token": AUTH_TOKEN}, "api_base_url": stub.url});
    let acc = create_account(&srv, body, &[AUTH_TOKEN]).await["id"].as_str().unwrap().to_string();

    let text = fixture("viber_inbound_text.json");
    let forged = [("x-viber-content-signature", signature("wrong", text.as_bytes()))];
    assert_eq!(json_webhook(&srv, "viber", &acc, &text, &forged).await.status(), 403);
    // Viber checks the URL when the operator registers it: acknowledged, nothing stored.
    let check =
        r#"{"event":"webhook","timestamp":1457764197627,"chat_hostname":"SN-219_","message_token":241256543215}"#;
    assert_eq!(webhook(&srv, &acc, check).await.status(), 200);
    assert_eq!(webhook(&srv, &acc, &text).await.status(), 200);
    assert_eq!(webhook(&srv, &acc, &text).await.status(), 200, "Viber retries");
    let c = first_conversation(&srv).await;
    let api = srv.api(KEY_A);
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    assert_eq!(parts["result"][0]["address"], json!({"type": "viber", "target": PEER, "name": "John McClane"}));
    let pic = fixture("viber_inbound_picture.json").replace("__CDN__", &format!("{}/cdn", stub.url));
    assert_eq!(webhook(&srv, &acc, &pic).await.status(), 200);
    let m = rehosted(&srv, &c, 1).await;
    assert_eq!(m["text"], "[picture] the box");
    assert_eq!(messages(&srv, &c).await.len(), 2);

    let mut ws = agent_ws(&srv, &c).await;
    let (_, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "It ships today."})).await;
    let upd = next_update(&mut ws).await;
    assert_eq!(upd["message"]["deliveries"][0]["status"], "sent");
    let token = upd["message"]["deliveries"][0]["provider_message_id"].as_str().unwrap().to_string();
    let out = stub.requests().into_iter().find(|r| r.path == "/pa/send_message").unwrap();
    assert_eq!(out.header("x-viber-auth-token"), AUTH_TOKEN);
    assert_eq!(
        out.json(),
        json!({"receiver": PEER, "min_api_version": 1, "sender": {"name": "Shop"}, "type": "text", "text": "It ships today."})
    );
    let callback =
        |event: &str| fixture("viber_callback.json").replace("__EVENT__", event).replace("__TOKEN__", &token);
    assert_eq!(webhook(&srv, &acc, &callback("delivered")).await.status(), 200);
    assert_eq!(next_update(&mut ws).await["message"]["status"], "delivered");
    assert_eq!(webhook(&srv, &acc, &callback("seen")).await.status(), 200);
    let read = ws.next_of("read").await;
    assert_eq!(read["seq"], m["seq"]);

    // Viber answers HTTP 200 with an error status: not subscribed (6) fails for good.
    stub.script([Answer::status(
        200,
        r#"{"status":6,"status_message":"notSubscribed","chat_hostname":"SN-CHAT-05_"}"#,
    )]);
    let d = send_and_settle(&srv, &c, "anyone there?").await;
    assert_eq!((d["status"].as_str(), d["error"].as_str()), (Some("failed"), Some("Viber status 6: notSubscribed")));
    srv.stop().await;
}
