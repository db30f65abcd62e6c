//! Customer webhooks end to end: a receiver on 127.0.0.1 that checks every signature, the
//! event catalogue and tenant isolation here; `burst` per-conversation order and no event lost
//! in a large burst, `retries` retries, dead letters, redelivery and secret rotation, `ssrf` the
//! SSRF guard and validation, `intercept` interception, `redis_backend` pending deliveries
//! surviving a node SIGKILL.

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

mod burst;
mod intercept;
mod redis_backend;
mod retries;
mod ssrf;
