//! Operations against the real server (and the real binary): metrics, limits, rate limits,
//! Origin allow-list, keepalive, token refresh, secrets kept out of logs, config validation.
//!
//! Windows are configured short (1–2 s) instead of asserting on timings: a test waits past a
//! window and then checks the outcome, never "how fast" something happened.

mod check_config;
mod logs;

use crate::common;
use crate::common::{KEY_A, KEY_B, TestServer, Ws};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const METRICS_TOKEN: &str = "metrics-token-0123456789";

/// Scrapes `/metrics` with the metrics token.
async fn scrape(srv: &TestServer) -> String {
    let res = reqwest::Client::new().get(srv.url("/metrics")).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    res.text().await.unwrap()
}

/// Sum of the samples of `name` whose labels include every pair in `want` (0 if none).
fn metric(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (n, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let labels: HashMap<&str, &str> =
            labels.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k, v.trim_matches('"'))).collect();
        if want.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            sum += value.parse::<f64>().unwrap();
        }
    }
    sum
}

/// Scrapes until `name{want}` reaches `at_least` (the server records a close after the client
/// saw it); panics after 10 s.
async fn scrape_until(srv: &TestServer, name: &str, want: &[(&str, &str)], at_least: f64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(srv).await;
        if metric(&text, name, want) >= at_least {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name}{want:?} never reached {at_least}:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A conversation with webchat participant `alice` and a token for her.
async fn alice_room(srv: &TestServer) -> (String, String) {
    let api = srv.api(KEY_A);
    let c = api.conversation("ops").await;
    api.webchat(&c, "alice").await;
    let t = api.token("alice", &[&c]).await;
    (c, t)
}

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

fn send(c: &str, text: &str, client_id: &str) -> Value {
    json!({"type": "send", "conversation_id": c, "text": text, "client_id": client_id})
}

#[tokio::test]
async fn metrics_appear_and_move_when_traffic_flows() {
    let mut cfg = common::test_config();
    cfg.metrics.token = METRICS_TOKEN.into();
    let srv = TestServer::start_with(cfg).await;
    let res = reqwest::get(srv.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 401, "the metrics token is required");
    let before = scrape(&srv).await;
    for name in ["switchboard_ws_connections_open", "switchboard_live_rooms", "switchboard_fanout_queue_drops_total"] {
        assert!(before.contains(name), "{name} is exported before any traffic:\n{before}");
    }
    assert_eq!(metric(&before, "switchboard_messages_posted_total", &[]), 0.0);

    let (c, t) = alice_room(&srv).await;
    let api = srv.api(KEY_A);
    let (s, _) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "rest"})).await;
    assert_eq!(s, 201);
    let mut alice = srv.ws(&t).await;
    alice.subscribe(&c, None).await;
    alice.send(send(&c, "ws", "k1")).await;
    alice.next_of("ack").await;

    let during = scrape(&srv).await;
    assert_eq!(metric(&during, "switchboard_messages_posted_total", &[("entry", "rest")]), 1.0);
    assert_eq!(metric(&during, "switchboard_messages_posted_total", &[("entry", "ws")]), 1.0);
    assert_eq!(metric(&during, "switchboard_ws_connections_opened_total", &[]), 1.0);
    assert_eq!(metric(&during, "switchboard_ws_connections_open", &[]), 1.0);
    assert_eq!(metric(&during, "switchboard_ws_subscriptions", &[]), 1.0);
    assert_eq!(metric(&during, "switchboard_live_rooms", &[]), 1.0);
    let route = [("route", "/v1.0/conversations/{id}/messages"), ("method", "POST"), ("status", "201")];
    assert_eq!(metric(&during, "switchboard_http_request_duration_seconds_count", &route), 1.0);
    assert!(during.contains("switchboard_http_request_duration_seconds_bucket{"), "a histogram with buckets");
    assert!(during.contains(r#"node=""#), "every series names its node");

    alice.stream.send(Message::Close(None)).await.unwrap();
    let after = scrape_until(&srv, "switchboard_ws_connections_closed_total", &[], 1.0).await;
    assert_eq!(metric(&after, "switchboard_ws_connections_open", &[]), 0.0);
    assert_eq!(metric(&after, "switchboard_ws_subscriptions", &[]), 0.0);
    assert_eq!(metric(&after, "switchboard_live_rooms", &[]), 0.0);
    srv.stop().await;
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

#[tokio::test]
async fn rest_rate_limit_trips_with_retry_after_and_recovers() {
    let mut cfg = common::test_config();
    cfg.limits.api_rate_per_sec = 1;
    cfg.limits.api_burst = 3;
    cfg.metrics.token = METRICS_TOKEN.into();
    let srv = TestServer::start_with(cfg).await;
    let http = reqwest::Client::new();
    let get = |key: &'static str| http.get(srv.url("/v1.0/conversations")).bearer_auth(key).send();
    for _ in 0..3 {
        assert_eq!(get(KEY_A).await.unwrap().status(), 200);
    }
    let limited = get(KEY_A).await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(get(KEY_B).await.unwrap().status(), 200, "limits are per API key");
    let text = scrape(&srv).await;
    assert_eq!(metric(&text, "switchboard_rate_limited_total", &[("scope", "api")]), 1.0);

    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(get(KEY_A).await.unwrap().status(), 200, "the key recovers after Retry-After");
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

/// On the Redis backend every command is timed: the append script shows up in the latency
/// histogram, and a Redis that goes away shows up as errors.
#[tokio::test]
async fn redis_command_latency_and_errors_are_measured() {
    let mut cfg = common::test_config();
    cfg.metrics.token = METRICS_TOKEN.into();
    cfg.redis.command_timeout_ms = 500;
    let mut srv = TestServer::start_on(common::Backend::Redis, cfg).await;
    let api = srv.api(KEY_A);
    let c = api.conversation("timed").await;
    for i in 0..3 {
        let (s, _) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": format!("m{i}")})).await;
        assert_eq!(s, 201);
    }
    let name = "switchboard_redis_command_duration_seconds_count";
    let text = scrape_until(&srv, name, &[("command", "evalsha")], 3.0).await;
    assert!(metric(&text, name, &[("command", "HMGET")]) >= 3.0, "conversation reads are timed too");
    srv.redis.as_mut().unwrap().kill();
    let (s, _) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "down"})).await;
    assert_eq!(s, 503);
    scrape_until(&srv, "switchboard_redis_errors_total", &[], 1.0).await;
}

/// A provider retrying the same message id stores (and counts as posted) one message; the
/// retry is counted apart, by provider.
#[tokio::test]
async fn a_provider_retry_counts_as_a_duplicate_not_a_post() {
    common::on_every_backend(a_provider_retry_counts_as_a_duplicate_not_a_post_on).await;
}

async fn a_provider_retry_counts_as_a_duplicate_not_a_post_on(backend: common::Backend) {
    let mut cfg = common::channels::config();
    cfg.metrics.token = METRICS_TOKEN.into();
    let srv = TestServer::start_on(backend, cfg).await;
    let (_stub, acc) = crate::channels_phone::twilio(&srv).await;
    let posted = |t: &str| metric(t, "switchboard_messages_posted_total", &[("entry", "provider")]);
    let dups = |t: &str| metric(t, "switchboard_inbound_duplicates_total", &[("provider", "twilio")]);
    let before = scrape(&srv).await;
    for _ in 0..2 {
        assert_eq!(crate::channels_phone::sms_from(&srv, &acc, "+14155550123").await, 200);
    }
    let after = scrape(&srv).await;
    assert_eq!((posted(&after) - posted(&before), dups(&after) - dups(&before)), (1.0, 1.0), "{after}");
    let text = after.lines().find(|l| l.starts_with("# HELP switchboard_messages_posted_total")).unwrap();
    assert!(text.contains("retries"), "{text}");
    srv.stop().await;
}

/// A burst of 1,000 connects finds room in the listen queue even before anything accepts:
/// with tokio's `bind` (a backlog of 128) most of them would wait out SYN retries, and the
/// 5 s bound below would not hold for a never-accepting listener.
#[tokio::test]
async fn the_listener_queues_a_burst_of_a_thousand_connects() {
    let config = common::test_config();
    let listener = switchboard::listen("127.0.0.1:0", config.server.listen_backlog).await.unwrap();
    assert_eq!(config.server.listen_backlog, 4096, "the default");
    let addr = listener.local_addr().unwrap();
    let connects =
        (0..1000).map(|_| tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)));
    let done = futures_util::future::join_all(connects).await;
    let ok = done.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(ok, 1000, "connects completed without an accept");
    drop(listener);
}
