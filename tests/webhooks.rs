//! Customer webhooks end to end: a receiver on 127.0.0.1 that checks every signature, the
//! event catalogue, per-conversation order, retries, dead letters, redelivery, interception,
//! the SSRF guard, secret rotation, and (Redis) pending deliveries surviving a node SIGKILL.

mod common;

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::stub::{Answer, Recorded, Stub, eventually};
use common::{KEY_A, KEY_B, TestServer};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn config() -> switchboard::Config {
    let mut c = common::test_config();
    let w = &mut c.webhooks;
    w.allow_private_targets = true;
    w.retry_base_ms = 20;
    w.retry_max_ms = 100;
    w.intercept_timeout_ms = 400;
    w.request_timeout_ms = 2000;
    c.channels.retry_base_ms = 10;
    c.channels.retry_max_ms = 50;
    c
}

/// `t` and every `v1` of a `Switchboard-Signature` header.
fn parse_signature(h: &str) -> (i64, Vec<String>) {
    let mut t = 0;
    let mut v1 = Vec::new();
    for part in h.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse().unwrap(),
            Some(("v1", v)) => v1.push(v.to_string()),
            _ => panic!("unexpected signature part {part:?} in {h}"),
        }
    }
    (t, v1)
}

/// What a receiver computes: hex HMAC-SHA256(secret, "<t>.<raw body>").
fn expected(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks headers and signature of a webhook request like a customer's receiver would.
fn verify(headers: &HeaderMap, body: &[u8], secret: &str) -> Value {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(h("content-type"), "application/json");
    let (t, v1) = parse_signature(&h("switchboard-signature"));
    assert!((chrono::Utc::now().timestamp() - t).abs() < 60, "fresh timestamp");
    assert!(v1.contains(&expected(secret, t, body)), "signature matches the secret");
    assert!(switchboard::webhooks::sign::verify(&h("switchboard-signature"), body, secret, t, 0));
    let ev: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(h("switchboard-event-id"), ev["id"].as_str().unwrap());
    for k in ["id", "type", "tenant_id", "tm_create", "data"] {
        assert!(ev.get(k).is_some(), "{k} in {ev}");
    }
    ev
}

fn check(r: &Recorded, secret: &str) -> Value {
    verify(&r.headers, &r.body, secret)
}

/// Creates a webhook; returns (id, secret).
async fn webhook(api: &common::Api, body: Value) -> (String, String) {
    let (s, v) = api.post("/v1.0/webhooks", body).await;
    assert_eq!(s, 201, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    (v["id"].as_str().unwrap().to_string(), secret)
}

async fn ok_stub() -> Stub {
    Stub::start(|_, _| Answer::status(200, "ok")).await
}

/// Requests whose event type is `kind`.
fn of_type(reqs: &[Recorded], kind: &str) -> Vec<Value> {
    reqs.iter().map(|r| r.json()).filter(|e| e["type"] == kind).collect()
}

async fn wait_type(stub: &Stub, kind: &str) -> Value {
    eventually(|| async { of_type(&stub.requests(), kind).into_iter().next() }).await
}

async fn deliveries(api: &common::Api, hook: &str) -> Vec<Value> {
    let (s, v) = api.get(&format!("/v1.0/webhooks/{hook}/deliveries?page_size=100")).await;
    assert_eq!(s, 200, "{v}");
    v["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_catalogue_event_arrives_signed_and_tenants_are_isolated() {
    let srv = TestServer::start_with(config()).await;
    let (api, other) = (srv.api(KEY_A), srv.api(KEY_B));
    let stub = ok_stub().await;
    let (hook, secret) = webhook(&api, json!({"url": format!("{}/hook", stub.url), "description": "all"})).await;
    let other_stub = ok_stub().await;
    webhook(&other, json!({"url": other_stub.url, "events": ["message.created"]})).await;

    // Tenant isolation on the resource; the secret is never shown again.
    assert_eq!(other.get(&format!("/v1.0/webhooks/{hook}")).await.0, 404);
    assert_eq!(other.delete(&format!("/v1.0/webhooks/{hook}")).await.0, 404);
    assert_eq!(other.get(&format!("/v1.0/webhooks/{hook}/deliveries")).await.0, 404);
    let (_, got) = api.get(&format!("/v1.0/webhooks/{hook}")).await;
    assert_eq!((got["mode"].as_str(), got["events"].clone()), (Some("notify"), json!(["*"])));
    assert!(!got.to_string().contains(&secret) && got.get("secret").is_none());
    assert_eq!(api.get("/v1.0/webhooks").await.1["result"].as_array().unwrap().len(), 1);

    // A Twilio account and an SMS participant, so an API message goes out and gets a status.
    let twilio = Stub::start(|req, i| {
        let sid = format!("SM{:032x}", i + 1);
        let body = req.form_field("Body").unwrap_or_default();
        Answer::status(201, &json!({"sid": sid, "status": "queued", "body": body}).to_string())
    })
    .await;
    let (s, acc) = api
        .post(
            "/v1.0/conversation_accounts",
            json!({"type": "tel", "provider": "twilio", "address": "+15005550006", "api_base_url": twilio.url,
                   "credentials": {"account_sid": "AC00000000000000000000000000000000", "auth_token": "tok-0123456789"}}),
        )
        .await;
    assert_eq!(s, 201, "{acc}");
    let acc = acc["id"].as_str().unwrap().to_string();
    assert_eq!(api.put(&format!("/v1.0/conversation_accounts/{acc}"), json!({"name": "renamed"})).await.0, 200);
    let c = api.conversation("catalogue").await;
    assert_eq!(api.put(&format!("/v1.0/conversations/{c}"), json!({"name": "renamed"})).await.0, 200);
    let (s, tel) = api
        .post(
            &format!("/v1.0/conversations/{c}/participants"),
            json!({"address": {"type": "tel", "target": "+14155550100"}, "account_id": acc}),
        )
        .await;
    assert_eq!(s, 201, "{tel}");
    let link = format!("/v1.0/conversations/{c}/participants/{}/links", tel["id"].as_str().unwrap());
    let (s, l) =
        api.post(&link, json!({"address": {"type": "tel", "target": "+14155550101"}, "account_id": acc})).await;
    assert!(s == 200 || s == 201, "{s} {l}");
    let p = api.webchat(&c, "agent").await;
    assert_eq!(api.delete(&format!("/v1.0/conversations/{c}/participants/{p}")).await.0, 200);
    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "hello"})).await;
    assert_eq!(s, 201, "{m}");
    wait_type(&stub, "message.updated").await;
    assert_eq!(api.delete(&format!("/v1.0/conversations/{c}")).await.0, 200);
    assert_eq!(api.delete(&format!("/v1.0/conversation_accounts/{acc}")).await.0, 200);

    let tenant_a = common::test_config().tenants[0].tenant_id().to_string();
    for kind in switchboard::webhooks::CATALOGUE {
        let ev = wait_type(&stub, kind).await;
        assert_eq!(ev["tenant_id"], tenant_a.as_str(), "{ev}");
    }
    for r in stub.requests() {
        check(&r, &secret);
        assert_eq!(r.path, "/hook");
    }
    let created = wait_type(&stub, "message.created").await;
    assert_eq!((created["data"]["id"].clone(), created["data"]["text"].clone()), (m["id"].clone(), json!("hello")));
    assert_eq!(created["conversation_id"], c.as_str());

    // The other tenant's receiver saw nothing of tenant a.
    assert!(other_stub.requests().is_empty());
    // Deliveries are listed with their attempts.
    let ds = eventually(|| async {
        let ds = deliveries(&api, &hook).await;
        (ds.len() == stub.requests().len() && ds.iter().all(|d| d["status"] == "delivered")).then_some(ds)
    })
    .await;
    assert_eq!(ds[0]["attempts"][0]["status_code"], 200);
    assert!(ds[0]["attempts"][0]["latency_ms"].is_u64());
    srv.stop().await;
}

#[tokio::test]
async fn deliveries_keep_publication_order_per_conversation_under_concurrent_posts() {
    let srv = TestServer::start_with(config()).await;
    let api = srv.api(KEY_A);
    let stub = ok_stub().await;
    let (_, secret) = webhook(&api, json!({"url": stub.url, "events": ["message.created"]})).await;
    // Early attempts fail, so lanes have to hold later events back while they retry.
    stub.script((0..6).map(|_| Answer::status(500, "busy")));
    let mut published = srv.state.broker.events();
    let convs = [api.conversation("one").await, api.conversation("two").await];
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (api, convs) = (api.clone(), convs.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let c = &convs[(w + i) % 2];
                let (s, _) =
                    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": format!("{w}-{i}")})).await;
                assert_eq!(s, 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut order: Vec<(String, String)> = Vec::new();
    while order.len() < 40 {
        let e = tokio::time::timeout(Duration::from_secs(5), published.recv()).await.unwrap().unwrap();
        if e.kind == "message.created" {
            order.push((e.conversation_id.unwrap().to_string(), e.id.to_string()));
        }
    }
    // Every event delivered (2xx) once, in each conversation in publication order.
    let delivered = eventually(|| async {
        let ok: Vec<Value> =
            stub.requests().iter().enumerate().filter(|(i, _)| *i >= 6).map(|(_, r)| check(r, &secret)).collect();
        (ok.len() >= 40).then_some(ok)
    })
    .await;
    for c in &convs {
        let want: Vec<&String> = order.iter().filter(|(cc, _)| cc == c).map(|(_, id)| id).collect();
        let got: Vec<&str> = delivered
            .iter()
            .filter(|e| e["conversation_id"] == c.as_str())
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(got, want, "conversation {c}");
        let seqs: Vec<u64> = delivered
            .iter()
            .filter(|e| e["conversation_id"] == c.as_str())
            .map(|e| e["data"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs.len(), 20);
    }
    srv.stop().await;
}

#[tokio::test]
async fn retries_after_5xx_then_success_and_4xx_fails_at_once() {
    let srv = TestServer::start_with(config()).await;
    let api = srv.api(KEY_A);
    let stub = ok_stub().await;
    let (hook, secret) = webhook(&api, json!({"url": stub.url, "events": ["conversation.created"]})).await;
    stub.script([
        Answer::status(500, "oops"),
        Answer { status: 429, headers: vec![], body: "slow down".into() },
        Answer::status(503, "down"),
    ]);
    let c = api.conversation("retry").await;
    let reqs = stub.wait_for(4).await;
    let evs: Vec<Value> = reqs.iter().map(|r| check(r, &secret)).collect();
    assert!(evs.iter().all(|e| e["data"]["id"] == c.as_str()));
    assert!(reqs.windows(2).all(|w| w[0].body == w[1].body), "identical body on every attempt");
    let d = eventually(|| async {
        deliveries(&api, &hook).await.into_iter().next().filter(|d| d["status"] == "delivered")
    })
    .await;
    let codes: Vec<u64> =
        d["attempts"].as_array().unwrap().iter().map(|a| a["status_code"].as_u64().unwrap()).collect();
    assert_eq!(codes, [500, 429, 503, 200]);
    assert_eq!(d["attempt_count"], 4);
    assert_eq!(d["event_id"], evs[0]["id"]);

    // 400: failed after one attempt, no retry.
    stub.script([Answer::status(400, "no thanks")]);
    api.conversation("refused").await;
    let d =
        eventually(|| async { deliveries(&api, &hook).await.into_iter().next().filter(|d| d["status"] == "failed") })
            .await;
    assert_eq!(d["attempt_count"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stub.requests().len(), 5);
    srv.stop().await;
}

#[tokio::test]
async fn dead_after_the_horizon_then_redelivered() {
    let mut cfg = config();
    cfg.webhooks.retry_horizon_secs = 1;
    cfg.webhooks.retry_base_ms = 50;
    cfg.webhooks.retry_max_ms = 200;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let stub = Stub::start(move |_, _| {
        if flag.load(Ordering::SeqCst) { Answer::status(204, "") } else { Answer::status(502, "bad gateway") }
    })
    .await;
    let (hook, secret) = webhook(&api, json!({"url": stub.url, "events": ["conversation.created"]})).await;
    api.conversation("doomed").await;
    let started = Instant::now();
    let d = eventually(|| async { deliveries(&api, &hook).await.into_iter().next().filter(|d| d["status"] == "dead") })
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(d["attempt_count"].as_u64().unwrap() >= 3, "{d}");
    assert!(d.get("next_retry_at").is_none());
    let sent = stub.requests().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(stub.requests().len(), sent, "no attempts after dead");

    // Redeliver: same event id, delivered now that the endpoint is back.
    up.store(true, Ordering::SeqCst);
    let path = format!("/v1.0/webhooks/{hook}/deliveries/{}/redeliver", d["id"].as_str().unwrap());
    assert_eq!(srv.api(KEY_B).post(&path, json!({})).await.0, 404, "other tenant");
    let (s, r) = api.post(&path, json!({})).await;
    assert_eq!((s, r["status"].as_str()), (202, Some("pending")), "{r}");
    let d2 = eventually(|| async {
        deliveries(&api, &hook).await.into_iter().next().filter(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!((d2["id"].clone(), d2["event_id"].clone()), (d["id"].clone(), d["event_id"].clone()));
    let last = stub.requests().pop().unwrap();
    assert_eq!(check(&last, &secret)["id"], d["event_id"]);
    let missing = format!("/v1.0/webhooks/{hook}/deliveries/{}/redeliver", uuid::Uuid::now_v7());
    assert_eq!(api.post(&missing, json!({})).await.0, 404);
    srv.stop().await;
}

/// A receiver whose answers may take time: `f(event) -> (status, body, delay)`.
async fn slow_receiver(
    f: impl Fn(&Value) -> (u16, String, u64) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>, Arc<AtomicUsize>) {
    let seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let peak = Arc::new(AtomicUsize::new(0));
    let now = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let (s, p) = (seen.clone(), peak.clone());
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (s, p, n, f) = (s.clone(), p.clone(), now.clone(), f.clone());
        async move {
            let inflight = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(inflight, Ordering::SeqCst);
            s.lock().unwrap().push((headers, body.clone()));
            let (status, answer, delay) = f(&serde_json::from_slice(&body).unwrap_or(Value::Null));
            tokio::time::sleep(Duration::from_millis(delay)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            (axum::http::StatusCode::from_u16(status).unwrap(), answer)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/intercept", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen, peak)
}

#[tokio::test]
async fn intercept_allows_rejects_modifies_and_applies_on_failure() {
    let srv = TestServer::start_with(config()).await;
    let api = srv.api(KEY_A);
    let (url, seen, _) = slow_receiver(|ev| {
        let text = ev["data"]["text"].as_str().unwrap_or("");
        let allow = || r#"{"action":"allow"}"#.to_string();
        match text {
            t if t.starts_with("spam") => (200, r#"{"action":"reject","reason":"looks like spam"}"#.into(), 0),
            "edit me" => (
                200,
                json!({"action": "modify", "text": "edited", "medias": [{"url": "https://cdn.example.com/a.png", "content_type": "image/png"}]})
                    .to_string(),
                0,
            ),
            "slow" => (200, allow(), 1500),
            "broken" => (500, "oops".into(), 0),
            "garbage" => (200, "not json".into(), 0),
            "empty it" => (200, r#"{"action":"modify","text":""}"#.into(), 0),
            _ => (200, allow(), 0),
        }
    })
    .await;
    let (hook, secret) = webhook(&api, json!({"url": url, "mode": "intercept"})).await;
    let (_, got) = api.get(&format!("/v1.0/webhooks/{hook}")).await;
    assert_eq!((got["events"].clone(), got["on_failure"].as_str()), (json!(["message.creating"]), Some("allow")));
    let c = api.conversation("guarded").await;
    let path = format!("/v1.0/conversations/{c}/messages");
    let post = |text: &'static str| {
        let (api, path) = (api.clone(), path.clone());
        async move { api.post(&path, json!({"text": text})).await }
    };

    let (s, m) = post("hello").await;
    assert_eq!((s, m["text"].as_str()), (201, Some("hello")));
    let (headers, body) = seen.lock().unwrap()[0].clone();
    let ev = verify(&headers, &body, &secret);
    assert_eq!((ev["type"].as_str(), ev["data"]["text"].as_str()), (Some("message.creating"), Some("hello")));
    assert_eq!(ev["data"]["seq"], 0);

    let (s, e) = post("spam spam").await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("rejected_by_webhook")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("looks like spam"));

    let (s, m) = post("edit me").await;
    assert_eq!(
        (s, m["text"].as_str(), m["medias"][0]["content_type"].as_str()),
        (201, Some("edited"), Some("image/png"))
    );

    // Failures with on_failure = allow: stored as sent.
    for text in ["slow", "broken", "garbage", "empty it"] {
        let t0 = Instant::now();
        let (s, m) = post(text).await;
        assert_eq!((s, m["text"].as_str()), (201, Some(text)), "{text}: {m}");
        assert!(t0.elapsed() < Duration::from_millis(1400), "{text} waited for the timeout only");
    }
    // on_failure = reject.
    let (s, _) = api.put(&format!("/v1.0/webhooks/{hook}"), json!({"on_failure": "reject"})).await;
    assert_eq!(s, 200);
    for text in ["slow", "broken", "garbage"] {
        let (s, e) = post(text).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("rejected_by_webhook")), "{text}: {e}");
    }
    let (_, hist) = api.get(&format!("{path}?page_size=100")).await;
    let texts: Vec<&str> = hist["result"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["hello", "edited", "slow", "broken", "garbage", "empty it"],
        "rejected messages were not stored"
    );

    // Over WebSocket a rejection is an `error` frame, not an ack.
    api.webchat(&c, "alice").await;
    let mut ws = srv.ws(&api.token("alice", &[&c]).await).await;
    ws.subscribe(&c, None).await;
    ws.send(json!({"type": "send", "conversation_id": c, "text": "spam again", "client_id": "x1"})).await;
    let e = ws.next_of("error").await;
    assert_eq!((e["code"].as_str(), e["client_id"].as_str()), (Some("rejected_by_webhook"), Some("x1")));
    ws.send(json!({"type": "send", "conversation_id": c, "text": "edit me", "client_id": "x2"})).await;
    assert_eq!(ws.next_of("ack").await["client_id"], "x2");

    // Tenant b has no intercept webhook: not called.
    let before = seen.lock().unwrap().len();
    let other = srv.api(KEY_B);
    let cb = other.conversation("free").await;
    assert_eq!(other.post(&format!("/v1.0/conversations/{cb}/messages"), json!({"text": "spam"})).await.0, 201);
    assert_eq!(seen.lock().unwrap().len(), before);
    srv.stop().await;
}

#[tokio::test]
async fn slow_endpoint_blocks_neither_others_nor_posting() {
    let mut cfg = config();
    cfg.webhooks.max_concurrency_per_endpoint = 2;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let (slow_url, slow_seen, peak) = slow_receiver(|_| (200, "ok".into(), 1500)).await;
    let fast = ok_stub().await;
    webhook(&api, json!({"url": slow_url, "events": ["message.created"]})).await;
    webhook(&api, json!({"url": fast.url, "events": ["message.created"]})).await;
    let mut convs = Vec::new();
    for i in 0..5 {
        convs.push(api.conversation(&format!("c{i}")).await);
    }
    let t0 = Instant::now();
    for c in &convs {
        assert_eq!(api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "hi"})).await.0, 201);
    }
    assert!(t0.elapsed() < Duration::from_millis(1000), "posting does not wait for webhooks");
    fast.wait_for(5).await;
    assert!(t0.elapsed() < Duration::from_millis(1400), "the fast endpoint is not held up by the slow one");
    eventually(|| async { (slow_seen.lock().unwrap().len() == 5).then_some(()) }).await;
    assert_eq!(peak.load(Ordering::SeqCst), 2, "at most max_concurrency_per_endpoint requests in flight");
    srv.stop().await;
}

#[tokio::test]
async fn ssrf_guard_refuses_internal_targets() {
    let mut cfg = config();
    cfg.webhooks.allow_private_targets = false;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://93.184.216.34/hook",
        "http://user:pw@93.184.216.34/hook",
        "not a url",
    ] {
        let (s, e) = api.post("/v1.0/webhooks", json!({"url": url})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_url")), "{url}: {e}");
    }
    let (hook, _) = webhook(&api, json!({"url": "https://93.184.216.34/hook"})).await;
    let (s, e) = api.put(&format!("/v1.0/webhooks/{hook}"), json!({"url": "http://127.0.0.1:8080/"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_url")));
    // Other validation.
    for (body, code) in [
        (json!({"url": "https://93.184.216.34/", "events": ["nope"]}), "invalid_events"),
        (json!({"url": "https://93.184.216.34/", "events": []}), "invalid_events"),
        (
            json!({"url": "https://93.184.216.34/", "mode": "intercept", "events": ["message.created"]}),
            "invalid_events",
        ),
        (json!({"url": "https://93.184.216.34/", "on_failure": "reject"}), "invalid_on_failure"),
    ] {
        let (s, e) = api.post("/v1.0/webhooks", body).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some(code)), "{e}");
    }
    assert_eq!(api.delete(&format!("/v1.0/webhooks/{hook}")).await.0, 200);
    assert_eq!(api.get(&format!("/v1.0/webhooks/{hook}")).await.0, 404);
    let (_, doc) = reqwest::get(srv.url("/openapi.json")).await.unwrap().json::<Value>().await.map(|v| (0, v)).unwrap();
    assert!(doc["paths"]["/v1.0/webhooks/{id}/deliveries/{delivery_id}/redeliver"]["post"].is_object());
    srv.stop().await;
}

#[tokio::test]
async fn rotated_secret_and_the_previous_one_both_sign_during_the_grace_period() {
    let mut cfg = config();
    cfg.webhooks.secret_grace_secs = 3;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let stub = ok_stub().await;
    let (hook, old) = webhook(&api, json!({"url": stub.url, "events": ["conversation.created"]})).await;
    let (s, r) = api.post(&format!("/v1.0/webhooks/{hook}/rotate_secret"), json!({})).await;
    assert_eq!(s, 200, "{r}");
    let new = r["secret"].as_str().unwrap().to_string();
    assert!(new != old && r["previous_secret_expires_at"].is_string());
    api.conversation("during grace").await;
    let req = &stub.wait_for(1).await[0];
    check(req, &new);
    check(req, &old);
    assert_eq!(parse_signature(req.header("switchboard-signature")).1.len(), 2);

    tokio::time::sleep(Duration::from_millis(3200)).await;
    api.conversation("after grace").await;
    let req = &stub.wait_for(2).await[1];
    check(req, &new);
    let (t, v1) = parse_signature(req.header("switchboard-signature"));
    assert_eq!(v1, [expected(&new, t, &req.body)], "the old secret no longer signs");
    srv.stop().await;
}

mod redis_backend {
    use super::*;
    use common::redis::{RedisServer, free_port};
    use std::process::{Child, Command, Stdio};

    /// A `switchboard` process on Redis with webhook settings for this test.
    struct Node {
        port: u16,
        config: std::path::PathBuf,
        log: std::path::PathBuf,
        child: Option<Child>,
        _dir: tempfile::TempDir,
    }

    impl Node {
        async fn start(redis_url: &str) -> Node {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let mut c = config();
            c.server.listen = format!("127.0.0.1:{port}");
            c.store.backend = switchboard::config::Backend::Redis;
            c.redis.url = redis_url.to_string();
            c.webhooks.retry_base_ms = 200;
            c.webhooks.retry_max_ms = 400;
            c.webhooks.lease_secs = 1;
            c.log.filter = "warn,switchboard=info".into();
            let config = dir.path().join("config.toml");
            std::fs::write(&config, toml::to_string(&c).unwrap()).unwrap();
            let log = dir.path().join("node.log");
            let mut n = Node { port, config, log, child: None, _dir: dir };
            n.spawn().await;
            n
        }

        async fn spawn(&mut self) {
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
                .arg("--config")
                .arg(&self.config)
                .arg("serve")
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            self.child = Some(child);
            let url = format!("http://127.0.0.1:{}/readyz", self.port);
            eventually(|| async { reqwest::get(&url).await.ok().filter(|r| r.status() == 200).map(|_| ()) }).await;
        }

        fn kill(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }

        fn api(&self, key: &str) -> common::Api {
            common::Api {
                client: reqwest::Client::new(),
                base: format!("http://127.0.0.1:{}", self.port),
                key: key.into(),
            }
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            self.kill();
        }
    }

    #[tokio::test]
    async fn pending_deliveries_survive_a_node_sigkill() {
        let redis = RedisServer::start().await;
        let up = Arc::new(AtomicBool::new(false));
        let flag = up.clone();
        let stub = Stub::start(move |_, _| {
            if flag.load(Ordering::SeqCst) { Answer::status(200, "ok") } else { Answer::status(503, "later") }
        })
        .await;
        let mut node = Node::start(&redis.url()).await;
        let api = node.api(KEY_A);
        let (hook, secret) = webhook(&api, json!({"url": stub.url, "events": ["message.created"]})).await;
        let c = api.conversation("durable").await;
        for i in 1..=5 {
            let (s, _) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": format!("m{i}")})).await;
            assert_eq!(s, 201);
        }
        stub.wait_for(2).await; // the first delivery is being retried, the others wait behind it
        node.kill();
        up.store(true, Ordering::SeqCst);
        let killed_at = stub.requests().len();
        node.spawn().await;

        let ok = eventually(|| async {
            let v: Vec<Value> = stub.requests()[killed_at..].iter().map(|r| check(r, &secret)).collect();
            (v.len() >= 5).then_some(v)
        })
        .await;
        let texts: Vec<&str> = ok.iter().map(|e| e["data"]["text"].as_str().unwrap()).collect();
        assert_eq!(texts[..5], ["m1", "m2", "m3", "m4", "m5"], "resumed in order");
        let ds = eventually(|| async {
            let ds = deliveries(&node.api(KEY_A), &hook).await;
            (ds.len() == 5 && ds.iter().all(|d| d["status"] == "delivered")).then_some(ds)
        })
        .await;
        assert!(ds.iter().any(|d| d["attempt_count"].as_u64().unwrap() >= 2), "attempts before the kill are kept");
    }
}
