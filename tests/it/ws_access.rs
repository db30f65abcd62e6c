//! Who holds a room over WebSocket, and how a connection shows its token: a participant
//! removed over REST loses its live sockets' rooms at once (on every node), and a token can
//! come in the first frame (`auth`), the subprotocol list, or the URL.

use crate::common::{self, Backend, KEY_A, TestServer, Ws, on_every_backend};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn send(c: &str, text: &str, client_id: &str) -> Value {
    json!({"type": "send", "conversation_id": c, "text": text, "client_id": client_id})
}

/// Alice's socket is on `ws_node`, the DELETE goes to `api_node`: she gets `unsubscribed`
/// (`removed`), no later message, and her `send` is refused.
async fn removal_cuts_the_socket(api_node: &TestServer, ws_node: &TestServer) {
    let api = api_node.api(KEY_A);
    let c = api.conversation("removal").await;
    let alice_pid = api.webchat(&c, "alice").await;
    api.webchat(&c, "bob").await;
    let mut alice = ws_node.ws(&api.token("alice", &[&c]).await).await;
    let mut bob = ws_node.ws(&api.token("bob", &[&c]).await).await;
    alice.subscribe(&c, None).await;
    bob.subscribe(&c, None).await;

    let (s, v) = api.delete(&format!("/v1.0/conversations/{c}/participants/{alice_pid}")).await;
    assert_eq!(s, 200, "{v}");
    let f = alice.next_of("unsubscribed").await;
    assert_eq!(f, json!({"type": "unsubscribed", "conversation_id": c, "reason": "removed"}));

    // Bob keeps talking; once his own copy arrived, the room's fan-out on that node is done.
    bob.send(send(&c, "after the removal", "b1")).await;
    loop {
        let f = bob.next().await;
        if f["type"] == "message" {
            assert_eq!(f["message"]["text"], "after the removal");
            break;
        }
    }
    alice.send(send(&c, "am I still here?", "a1")).await;
    let e = alice.next_of("error").await; // a `message` frame first fails here
    assert_eq!((e["code"].as_str(), e["client_id"].as_str()), (Some("forbidden"), Some("a1")), "{e}");
    alice.send(json!({"type": "ping", "id": 1})).await;
    assert_eq!(alice.next_of("pong").await["id"], 1, "nothing of the room reached alice");
    let (_, history) = api.get(&format!("/v1.0/conversations/{c}/messages")).await;
    assert!(!history.to_string().contains("am I still here?"), "{history}");
}

#[tokio::test]
async fn a_removed_participant_loses_its_open_socket_at_once() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        removal_cuts_the_socket(&srv, &srv).await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_removal_on_one_node_cuts_the_socket_on_another() {
    let redis = common::redis::RedisServer::start().await;
    let mut cfg = common::test_config();
    cfg.store.backend = switchboard::config::Backend::Redis;
    cfg.redis.url = redis.url();
    let a = TestServer::start_with(cfg.clone()).await;
    let b = TestServer::start_with(cfg).await;
    removal_cuts_the_socket(&a, &b).await;
    a.stop().await;
    b.stop().await;
}

/// A room with alice, and a token for her.
async fn alice_room(srv: &TestServer) -> (String, String) {
    let api = srv.api(KEY_A);
    let c = api.conversation("auth").await;
    api.webchat(&c, "alice").await;
    let t = api.token("alice", &[&c]).await;
    (c, t)
}

async fn bare(srv: &TestServer) -> Ws {
    Ws::connect(&format!("ws://{}/v1.0/ws", srv.addr)).await
}

/// Subscribes and sees a message posted over REST.
async fn works(srv: &TestServer, ws: &mut Ws, c: &str) {
    assert_eq!(ws.subscribe(c, None).await["seq"], 0);
    let (s, _) = srv.api(KEY_A).post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "hello"})).await;
    assert_eq!(s, 201);
    assert_eq!(ws.next_of("message").await["message"]["text"], "hello");
}

#[tokio::test]
async fn the_token_can_come_in_the_first_frame() {
    on_every_backend(async |backend: Backend| {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let (c, token) = alice_room(&srv).await;
        let mut ws = bare(&srv).await;
        ws.send(json!({"type": "auth", "token": token})).await;
        works(&srv, &mut ws, &c).await;
        // Only as the first frame.
        ws.send(json!({"type": "auth", "token": token})).await;
        assert_eq!(ws.next_of("error").await["code"], "already_authenticated");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_bad_or_missing_first_frame_token_closes_with_its_code() {
    let mut cfg = common::test_config();
    cfg.ws.auth_timeout_ms = 300;
    let srv = TestServer::start_with(cfg).await;
    let (c, _) = alice_room(&srv).await;
    let mut ws = bare(&srv).await;
    ws.send(json!({"type": "auth", "token": "forged.token.value"})).await;
    assert_eq!(ws.close_code().await, 4001, "forged token");
    let mut ws = bare(&srv).await;
    ws.send(json!({"type": "auth"})).await;
    assert_eq!(ws.close_code().await, 4001, "auth frame without a token");
    let mut ws = bare(&srv).await;
    ws.send(json!({"type": "subscribe", "conversation_id": c})).await;
    assert_eq!(ws.close_code().await, 4001, "a first frame that is not auth");
    let mut ws = bare(&srv).await;
    let start = std::time::Instant::now();
    assert_eq!(ws.close_code().await, 4003, "no auth frame in time");
    assert!(start.elapsed() < Duration::from_secs(3), "closed after {:?}", start.elapsed());
    srv.stop().await;
}

#[tokio::test]
async fn the_token_can_come_in_the_subprotocol_list_or_the_url() {
    let srv = TestServer::start().await;
    let (c, token) = alice_room(&srv).await;
    let mut req = format!("ws://{}/v1.0/ws", srv.addr).into_client_request().unwrap();
    let offered = format!("switchboard.v1, token.{token}");
    req.headers_mut().insert("sec-websocket-protocol", offered.parse().unwrap());
    let (stream, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    let chosen = res.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(chosen.as_deref(), Some("switchboard.v1"), "only the non-secret protocol is echoed");
    works(&srv, &mut Ws { stream }, &c).await;

    let (c2, token2) = alice_room(&srv).await;
    let mut old = srv.ws(&token2).await; // ?token= for old clients
    works(&srv, &mut old, &c2).await;
    srv.stop().await;
}
