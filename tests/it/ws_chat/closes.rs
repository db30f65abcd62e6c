//! When and why the server closes a chat socket, and what everyone else keeps meanwhile: a slow
//! reader (4008) while a fast one gets everything, malformed and binary frames (1002, 1003),
//! an oversized frame (1009), missing, forged, expired and out-of-scope tokens (4001, 4002,
//! `forbidden`), and a server shutdown (1001). Ordinary chat lives in the parent module.

use super::{room, send};
use crate::common;
use crate::common::{KEY_A, TestServer, Ws};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn slow_reader_is_closed_while_fast_reader_gets_everything() {
    let mut cfg = common::test_config();
    cfg.ws.queue_len = 16;
    let srv = TestServer::start_with(cfg).await;
    let (c, mut fast, mut slow) = room(&srv).await;
    let api = srv.api(KEY_A);
    // Big messages fill the slow reader's socket buffers quickly; it never reads meanwhile.
    let text = "x".repeat(16_000);
    let total = 1500u64;
    let fast_reader = tokio::spawn(async move {
        let mut next = 1u64;
        while next <= total {
            let f = fast.next_of("message").await;
            assert_eq!(f["message"]["seq"], next, "fast reader sees every message in order");
            next += 1;
        }
        fast
    });
    // The slow reader stalls until it has been cut, then reads again (within the server's
    // `ws.close_timeout_ms`): it drains what was buffered, then finds the slow-consumer code.
    let state = srv.state.clone();
    let slow_reader = tokio::spawn(async move {
        while state.hub.fanout_drops() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slow.close_code().await
    });
    let path = format!("/v1.0/conversations/{c}/messages");
    for _ in 0..total {
        let (s, _) = api.post(&path, json!({"text": text})).await;
        assert_eq!(s, 201);
    }
    let _fast = tokio::time::timeout(Duration::from_secs(60), fast_reader).await.unwrap().unwrap();
    assert_eq!(slow_reader.await.unwrap(), 4008);
    assert!(srv.state.hub.fanout_drops() >= 1);
    srv.stop().await;
}

#[tokio::test]
async fn malformed_frames_get_errors_then_protocol_close() {
    let srv = TestServer::start().await;
    let (c, mut alice, mut bob) = room(&srv).await;
    alice.stream.send(Message::Text("{oops".into())).await.unwrap();
    assert_eq!(alice.next_of("error").await["code"], "bad_frame");
    alice.send(json!({"type": "fly"})).await;
    assert_eq!(alice.next_of("error").await["code"], "bad_frame");
    alice.send(json!({"type": "ping", "id": 7})).await;
    assert_eq!(alice.next_of("pong").await, json!({"type": "pong", "id": 7}), "valid frames still work");
    // Application errors keep the socket open.
    alice.send(json!({"type": "send", "conversation_id": c, "text": "", "client_id": "e"})).await;
    let e = alice.next_of("error").await;
    assert_eq!((e["code"].as_str(), e["client_id"].as_str()), (Some("empty_message"), Some("e")));
    alice.send(json!({"type": "typing", "conversation_id": uuid::Uuid::now_v7()})).await;
    assert_eq!(alice.next_of("error").await["code"], "not_subscribed");
    for _ in 0..5 {
        alice.stream.send(Message::Text("nope".into())).await.unwrap();
    }
    assert_eq!(alice.close_code().await, 1002);
    // Binary frames are refused, the server stays up for everyone else.
    bob.stream.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(bob.close_code().await, 1003);
    let api = srv.api(KEY_A);
    let mut again = srv.ws(&api.token("alice", &[&c]).await).await;
    again.send(json!({"type": "ping"})).await;
    assert_eq!(again.next().await["type"], "pong");
    srv.stop().await;
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let mut cfg = common::test_config();
    cfg.ws.max_frame_bytes = 1024;
    let srv = TestServer::start_with(cfg).await;
    let (c, mut alice, _bob) = room(&srv).await;
    alice.send(send(&c, &"x".repeat(4096), "big")).await;
    assert_eq!(alice.close_code().await, 1009);
    srv.stop().await;
}

#[tokio::test]
async fn tokens_are_checked_and_scoped() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("scoped").await;
    let other = api.conversation("other").await;
    api.webchat(&c, "alice").await;
    let mut ws = Ws::connect(&format!("ws://{}/v1.0/ws", srv.addr)).await;
    ws.send(json!({"type": "subscribe", "conversation_id": c})).await;
    assert_eq!(ws.close_code().await, 4001, "missing token (no auth frame first)");
    let mut ws = srv.ws("").await;
    assert_eq!(ws.close_code().await, 4001, "empty token");
    let mut ws = srv.ws("forged.token.value").await;
    assert_eq!(ws.close_code().await, 4001, "invalid token");
    let now = chrono::Utc::now().timestamp() as u64;
    let expired =
        switchboard::auth::TokenSigner::new(common::SECRET.as_bytes()).sign(&switchboard::auth::ClientClaims {
            sub: "alice".into(),
            tid: srv.state.config.tenants[0].tenant_id(),
            convs: Some(vec![c.parse().unwrap()]),
            iat: now - 100,
            exp: now - 10,
            role: None,
            sid: None,
        });
    let mut ws = srv.ws(&expired).await;
    assert_eq!(ws.close_code().await, 4002, "expired token");

    let mut alice = srv.ws(&api.token("alice", &[&c]).await).await;
    alice.send(json!({"type": "subscribe", "conversation_id": other})).await;
    assert_eq!(alice.next_of("error").await["code"], "forbidden");
    alice.send(send(&other, "sneak", "s")).await;
    assert_eq!(alice.next_of("error").await["code"], "forbidden");
    // Removed from the room: the old token no longer opens it.
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    let pid = parts["result"][0]["id"].as_str().unwrap();
    api.delete(&format!("/v1.0/conversations/{c}/participants/{pid}")).await;
    alice.send(json!({"type": "subscribe", "conversation_id": c})).await;
    assert_eq!(alice.next_of("error").await["code"], "forbidden");
    srv.stop().await;
}

#[tokio::test]
async fn token_expiry_closes_a_live_connection() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("short").await;
    api.webchat(&c, "alice").await;
    let (_, t) = api.post("/v1.0/tokens", json!({"identity": "alice", "conversation_ids": [c], "ttl": 2})).await;
    let mut ws = srv.ws(t["token"].as_str().unwrap()).await;
    ws.subscribe(&c, None).await;
    assert_eq!(ws.close_code().await, 4002);
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let srv = TestServer::start().await;
    let (_c, mut alice, mut bob) = room(&srv).await;
    let stopping = tokio::spawn(srv.stop());
    assert_eq!(alice.close_code().await, 1001);
    assert_eq!(bob.close_code().await, 1001);
    tokio::time::timeout(Duration::from_secs(10), stopping).await.unwrap().unwrap();
    let _ = alice.stream.next().await;
}
