//! Customer webhooks end to end: a receiver on 127.0.0.1 that checks every signature, the
//! event catalogue, per-conversation order, retries, dead letters, redelivery, interception,
//! the SSRF guard, secret rotation, and (Redis) pending deliveries surviving a node SIGKILL;
//! `burst` checks that no event of a large burst is dropped on the way to the outbox.

use crate::common;
use crate::common::stub::{Answer, Recorded, Stub, eventually};
use crate::common::{KEY_A, KEY_B, TestServer};
use axum::body::Bytes;
use axum::http::HeaderMap;
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
    let (s, gone) = api.delete(&format!("/v1.0/conversations/{c}/messages/{}", m["id"].as_str().unwrap())).await;
    assert_eq!(s, 200, "{gone}");
    assert_eq!(wait_type(&stub, "message.deleted").await["data"]["deleted_at"], gone["deleted_at"]);
    assert_eq!(api.delete(&format!("/v1.0/conversations/{c}")).await.0, 200);
    assert_eq!(api.delete(&format!("/v1.0/conversation_accounts/{acc}")).await.0, 200);
    // Contacts: the tel participant's contact was created (and updated by the link); merge,
    // delete and erase the rest of the catalogue.
    let contact = async |name: &str| {
        let (s, c) = api.post("/v1.0/contacts", json!({"name": name})).await;
        assert_eq!(s, 201, "{c}");
        c["id"].as_str().unwrap().to_string()
    };
    let (x, y, z) = (contact("x").await, contact("y").await, contact("z").await);
    assert_eq!(api.post(&format!("/v1.0/contacts/{x}/merge"), json!({"contact_id": y})).await.0, 200);
    assert_eq!(api.delete(&format!("/v1.0/contacts/{x}")).await.0, 204);
    assert_eq!(api.delete(&format!("/v1.0/contacts/{z}?erase=true")).await.0, 204);

    let tenant_a = common::test_config().tenants[0].tenant_id().to_string();
    for kind in switchboard::wire::EventKind::NOTIFY.iter().map(|k| k.as_str()) {
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
async fn deliveries_keep_seq_order_per_conversation_under_concurrent_posts() {
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
        if e.kind == switchboard::wire::EventKind::MessageCreated {
            order.push((e.conversation_id.unwrap().to_string(), e.id.to_string()));
        }
    }
    // Every event delivered (2xx) once, in each conversation in seq order (the order the
    // appends wrote them into the outbox).
    let delivered = eventually(|| async {
        let ok: Vec<Value> =
            stub.requests().iter().enumerate().filter(|(i, _)| *i >= 6).map(|(_, r)| check(r, &secret)).collect();
        (ok.len() >= 40).then_some(ok)
    })
    .await;
    for c in &convs {
        let mut want: Vec<&str> = order.iter().filter(|(cc, _)| cc == c).map(|(_, id)| id.as_str()).collect();
        let mut got: Vec<&str> = delivered
            .iter()
            .filter(|e| e["conversation_id"] == c.as_str())
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        let seqs: Vec<u64> = delivered
            .iter()
            .filter(|e| e["conversation_id"] == c.as_str())
            .map(|e| e["data"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "conversation {c}");
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "the published events, each once");
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

mod burst;
mod intercept;
mod redis_backend;
mod ssrf;
