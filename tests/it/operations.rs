//! Operations against the real server (and the real binary): metrics (HTTP, WebSocket, Redis
//! commands, provider retries), the REST rate limit and the listen backlog. `sockets` covers
//! WebSocket admission and lifetime (connection limits, Origin, frame rate limit, token
//! refresh, keepalive), `logs` secrets kept out of logs, `check_config` config validation.
//!
//! Windows are configured short (1–2 s) instead of asserting on timings: a test waits past a
//! window and then checks the outcome, never "how fast" something happened.

mod check_config;
mod logs;
mod sockets;

use crate::common;
use crate::common::{KEY_A, KEY_B, TestServer};
use futures_util::SinkExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

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
