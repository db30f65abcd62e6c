//! Who may hold a WebSocket and for how long: connection limits (per node and per identity),
//! the Origin allow-list, the frame rate limit (answered in order, then closed 4029), token
//! expiry and refresh, and the keepalive that closes an idle socket (4009). The metrics helpers
//! and REST-side operations live in the parent module.

use super::{alice_room, metric, scrape, scrape_until, send};
use crate::common;
use crate::common::{KEY_A, TestServer, Ws};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Tries an upgrade with optional `Origin`; `Err((status, body))` when refused over HTTP.
async fn try_ws(srv: &TestServer, token: &str, origin: Option<&str>) -> Result<Ws, (u16, Value)> {
    let mut req = format!("ws://{}/v1.0/ws?token={token}", srv.addr).into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((stream, _)) => Ok(Ws { stream }),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let body = res.body().clone().unwrap_or_default();
            Err((res.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null)))
        }
        Err(e) => panic!("upgrade failed without an HTTP answer: {e}"),
    }
}

#[tokio::test]
async fn connection_limits_answer_their_documented_errors() {
    let mut cfg = common::test_config();
    cfg.ws.max_connections = 2;
    cfg.ws.max_connections_per_identity = 1;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let c = api.conversation("limits").await;
    api.webchat(&c, "alice").await;
    api.webchat(&c, "bob").await;
    let alice_token = api.token("alice", &[&c]).await;
    let alice = try_ws(&srv, &alice_token, None).await.unwrap();
    let (status, body) = try_ws(&srv, &alice_token, None).await.err().expect("second alice refused");
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("too_many_connections")), "{body}");
    let _bob = try_ws(&srv, &api.token("bob", &[&c]).await, None).await.unwrap();
    let (_, op) = api.post("/v1.0/tokens", json!({"identity": "carol", "all_conversations": true})).await;
    let (status, body) = try_ws(&srv, op["token"].as_str().unwrap(), None).await.err().expect("node is full");
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("unavailable")), "{body}");
    let text = scrape(&srv).await;
    assert_eq!(metric(&text, "switchboard_ws_connections_refused_total", &[("reason", "identity_limit")]), 1.0);
    assert_eq!(metric(&text, "switchboard_ws_connections_refused_total", &[("reason", "node_limit")]), 1.0);

    // Alice leaves: her slot (node and identity) comes back once the server saw it go.
    drop(alice);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut again = loop {
        match try_ws(&srv, &alice_token, None).await {
            Ok(ws) => break ws,
            Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("slot never released: {e:?}"),
        }
    };
    again.send(json!({"type": "ping"})).await;
    assert_eq!(again.next().await["type"], "pong");
    srv.stop().await;
}

/// Reads frames until the close; returns the `error` codes seen and the close code.
async fn errors_until_close(ws: &mut Ws) -> (Vec<String>, u16) {
    let mut errors = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.stream.next()).await.expect("close within 10s");
        match m {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "error" {
                    errors.push(v["code"].as_str().unwrap().to_string());
                }
            }
            Some(Ok(Message::Close(Some(f)))) => return (errors, f.code.into()),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Sends over the frame rate limit, written at once: every `send` is answered in the order
/// sent, the refused ones with a `rate_limited` error naming their `client_id`.
#[tokio::test]
async fn rate_limited_sends_are_answered_in_order_with_their_client_id() {
    use futures_util::SinkExt;
    let mut cfg = common::test_config();
    cfg.ws.rate_per_sec = 1;
    cfg.ws.rate_burst = 3;
    cfg.ws.max_rate_limited_frames = 10;
    let srv = TestServer::start_with(cfg).await;
    let (c, t) = alice_room(&srv).await;
    let mut ws = srv.ws(&t).await;
    for i in 0..6 {
        let f = json!({"type": "send", "conversation_id": c, "text": format!("m{i}"), "client_id": format!("s{i}")});
        ws.stream.feed(tokio_tungstenite::tungstenite::Message::Text(f.to_string().into())).await.unwrap();
    }
    ws.stream.flush().await.unwrap();
    let mut answers = Vec::new();
    while answers.len() < 6 {
        let f = ws.next().await;
        match f["type"].as_str() {
            Some("ack") => answers.push(("ack".to_string(), f["client_id"].as_str().unwrap().to_string())),
            Some("error") => answers.push((f["code"].as_str().unwrap().to_string(), f["client_id"].to_string())),
            _ => {} // the room's own message frames
        }
    }
    let want: Vec<(String, String)> = (0..6)
        .map(|i| if i < 3 { ("ack".into(), format!("s{i}")) } else { ("rate_limited".into(), format!("\"s{i}\"")) })
        .collect();
    assert_eq!(answers, want);
    srv.stop().await;
}

#[tokio::test]
async fn ws_rate_limit_answers_errors_recovers_then_closes_4029() {
    let mut cfg = common::test_config();
    cfg.ws.rate_per_sec = 1;
    cfg.ws.rate_burst = 3;
    cfg.ws.max_rate_limited_frames = 2;
    let srv = TestServer::start_with(cfg).await;
    let (_c, t) = alice_room(&srv).await;
    let mut ws = srv.ws(&t).await;
    for i in 0..3 {
        ws.send(json!({"type": "ping", "id": i})).await;
        assert_eq!(ws.next().await["type"], "pong");
    }
    ws.send(json!({"type": "ping", "id": "over"})).await;
    let e = ws.next().await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("rate_limited")), "{e}");
    // One second later the bucket has a cell again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.send(json!({"type": "ping", "id": "again"})).await;
    assert_eq!(ws.next().await["type"], "pong");
    // A client that keeps going is closed after `max_rate_limited_frames` errors.
    for _ in 0..6 {
        ws.send(json!({"type": "ping"})).await;
    }
    let (errors, code) = errors_until_close(&mut ws).await;
    assert_eq!(errors, vec!["rate_limited", "rate_limited"]);
    assert_eq!(code, 4029);
    let text = scrape_until(&srv, "switchboard_ws_connections_closed_total", &[("code", "4029")], 1.0).await;
    assert_eq!(metric(&text, "switchboard_rate_limited_total", &[("scope", "ws")]), 4.0);
    srv.stop().await;
}

#[tokio::test]
async fn disallowed_origin_is_refused_before_upgrade() {
    let mut cfg = common::test_config();
    cfg.ws.allowed_origins = vec!["https://app.example.com".into()];
    let srv = TestServer::start_with(cfg).await;
    let (_c, t) = alice_room(&srv).await;
    let (status, body) = try_ws(&srv, &t, Some("https://evil.example")).await.err().expect("refused");
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let refused = metric(&scrape(&srv).await, "switchboard_ws_connections_refused_total", &[("reason", "origin")]);
    assert_eq!(refused, 1.0);
    for origin in [Some("https://app.example.com"), None] {
        let mut ws = try_ws(&srv, &t, origin).await.unwrap_or_else(|e| panic!("{origin:?} refused: {e:?}"));
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.next().await["type"], "pong");
    }
    srv.stop().await;
}

#[tokio::test]
async fn expiring_token_closes_the_socket_and_a_refreshed_one_does_not() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("expiry").await;
    let other = api.conversation("other").await;
    api.webchat(&c, "alice").await;
    api.webchat(&other, "alice").await;
    let short = |convs: Vec<&String>, ttl: u64| {
        let api = api.clone();
        let body = json!({"identity": "alice", "conversation_ids": convs, "ttl": ttl});
        async move { api.post("/v1.0/tokens", body).await.1["token"].as_str().unwrap().to_string() }
    };
    let mut expiring = srv.ws(&short(vec![&c], 2).await).await;
    expiring.subscribe(&c, None).await;
    let mut refreshed = srv.ws(&short(vec![&c, &other], 2).await).await;
    refreshed.subscribe(&c, None).await;
    refreshed.subscribe(&other, None).await;

    // Refusals leave the current token in force.
    refreshed.send(json!({"type": "refresh", "token": "not.a.token"})).await;
    assert_eq!(refreshed.next_of("error").await["code"], "invalid_token");
    let (_, bob) = api.post("/v1.0/tokens", json!({"identity": "bob", "all_conversations": true})).await;
    refreshed.send(json!({"type": "refresh", "token": bob["token"]})).await;
    assert_eq!(refreshed.next_of("error").await["code"], "forbidden");

    // A longer token that no longer covers `other`: that room is left, the socket lives on.
    refreshed.send(json!({"type": "refresh", "token": short(vec![&c], 600).await})).await;
    let u = refreshed.next_of("unsubscribed").await;
    assert_eq!((u["conversation_id"].as_str(), u["reason"].as_str()), (Some(other.as_str()), Some("token_scope")));
    let r = refreshed.next_of("refreshed").await;
    let expires_at = chrono::DateTime::parse_from_rfc3339(r["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires_at.timestamp() > chrono::Utc::now().timestamp() + 500);

    assert_eq!(expiring.close_code().await, 4002);
    // The old token's expiry has passed: the refreshed socket is still open and working.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    refreshed.send(send(&c, "still here", "k1")).await;
    assert_eq!(refreshed.next_of("ack").await["seq"], 1);
    srv.stop().await;
}

#[tokio::test]
async fn idle_connection_is_closed_4009_while_one_answering_pings_stays() {
    let mut cfg = common::test_config();
    cfg.ws.ping_interval_secs = 1;
    cfg.ws.idle_timeout_secs = 2;
    let srv = TestServer::start_with(cfg).await;
    let (_c, t) = alice_room(&srv).await;
    let mut silent = srv.ws(&t).await;
    let mut alive = srv.ws(&t).await;
    // `alive` keeps reading, so its client library answers every ping with a pong; `silent`
    // reads nothing and answers nothing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut pings = 0;
    while let Ok(m) = tokio::time::timeout_at(deadline, alive.stream.next()).await {
        match m {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("the answering client got {other:?}"),
        }
    }
    assert!(pings >= 2, "the server pings every ping_interval_secs");
    alive.send(json!({"type": "ping"})).await;
    assert_eq!(alive.next().await["type"], "pong");
    assert_eq!(silent.close_code().await, 4009);
    srv.stop().await;
}
