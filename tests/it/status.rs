//! Conversation status and timers (issue 16): statuses set over REST and announced as events
//! and watcher frames, `closed` refusing sends on every door, snoozes and inactivity timers
//! moving quiet rooms along, inbound SMS reopening or (after `closed`) opening a new room, and
//! on Redis each timer firing once however many nodes work the deadlines.

use crate::common::channels::{self, conversations, create_account, hook_url, messages, post_webhook};
use crate::common::redis::{RedisServer, next_within};
use crate::common::stub::{Answer, Recorded, Stub, eventually};
use crate::common::{Api, Backend, KEY_A, TestServer, on_every_backend, test_config};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard::channels::twilio::signature;

const TOKEN: &str = "twilio-auth-token-0123456789";

/// The test config with webhooks to 127.0.0.1 allowed and tenant `a`'s timers set (seconds).
fn config(resolve_after: Option<u64>, close_after: Option<u64>) -> switchboard::Config {
    let mut c = test_config();
    c.webhooks.allow_private_targets = true;
    c.webhooks.retry_base_ms = 20;
    c.webhooks.retry_max_ms = 100;
    c.tenants[0].timers = switchboard::model::Timers { resolve_after, close_after };
    c
}

/// A stub receiving tenant `a`'s `conversation.updated` webhooks.
async fn updates_hook(api: &Api) -> Stub {
    let stub = Stub::start(|_, _| Answer::status(200, "ok")).await;
    let (s, v) = api.post("/v1.0/webhooks", json!({"url": stub.url, "events": ["conversation.updated"]})).await;
    assert_eq!(s, 201, "{v}");
    stub
}

/// The `(status, previous_status)` of each `conversation.updated` of `conv` received so far.
fn changes(reqs: &[Recorded], conv: &str) -> Vec<(String, String)> {
    reqs.iter()
        .map(Recorded::json)
        .filter(|e| e["conversation_id"] == conv && e["data"]["previous_status"].is_string())
        .map(|e| (e["data"]["status"].as_str().unwrap().into(), e["data"]["previous_status"].as_str().unwrap().into()))
        .collect()
}

async fn status_of(api: &Api, conv: &str) -> Value {
    let (s, c) = api.get(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!(s, 200, "{c}");
    c
}

/// Waits until `conv` has `status` and returns it as read.
async fn until_status(api: &Api, conv: &str, status: &str) -> Value {
    eventually(|| async {
        let c = status_of(api, conv).await;
        (c["status"] == status).then_some(c)
    })
    .await
}

async fn put(api: &Api, conv: &str, body: Value) -> (u16, Value) {
    api.put(&format!("/v1.0/conversations/{conv}"), body).await
}

fn in_secs(s: i64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::seconds(s)).to_rfc3339()
}

#[tokio::test]
async fn status_round_trips_and_every_change_is_an_event_and_a_watcher_frame() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config(None, None)).await;
        let api = srv.api(KEY_A);
        let hook = updates_hook(&api).await;
        let conv = api.conversation("status").await;
        assert_eq!(status_of(&api, &conv).await["status"], "open", "{backend:?}: the default");
        let (_, t) = api.post("/v1.0/tokens", json!({"identity": "olivia", "all_conversations": true})).await;
        let mut ws = srv.ws(t["token"].as_str().unwrap()).await;
        ws.send(json!({"type": "watch_conversations"})).await;
        assert_eq!(ws.next().await, json!({"type": "watching"}));

        let (s, c) = put(&api, &conv, json!({"status": "pending"})).await;
        assert_eq!((s, c["status"].as_str()), (200, Some("pending")), "{c}");
        assert_eq!(status_of(&api, &conv).await["status"], "pending");
        let f = next_within(&mut ws, Duration::from_secs(5)).await.expect("a conversation frame");
        assert_eq!((f["event"].as_str(), f["conversation"]["status"].as_str()), (Some("updated"), Some("pending")));

        // `snoozed` needs a future `snoozed_until`; other statuses take none.
        for bad in [
            json!({"status": "snoozed"}),
            json!({"status": "snoozed", "snoozed_until": in_secs(-5)}),
            json!({"status": "open", "snoozed_until": in_secs(60)}),
        ] {
            let (s, v) = put(&api, &conv, bad.clone()).await;
            assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid_status")), "{bad} → {v}");
        }
        let until = in_secs(3600);
        let (s, c) = put(&api, &conv, json!({"status": "snoozed", "snoozed_until": until})).await;
        assert_eq!((s, c["status"].as_str()), (200, Some("snoozed")), "{c}");
        assert!(c["snoozed_until"].is_string(), "{c}");
        let (_, c) = put(&api, &conv, json!({"status": "resolved"})).await;
        assert_eq!((c["status"].as_str(), &c["snoozed_until"]), (Some("resolved"), &Value::Null), "cleared: {c}");

        // An agent token may change the status of a conversation it may act on, nothing else.
        let (_, t) = api.post("/v1.0/tokens", json!({"identity": "ann", "role": "agent"})).await;
        let agent = Api { key: t["token"].as_str().unwrap().into(), ..api.clone() };
        let (s, c) = put(&agent, &conv, json!({"status": "open"})).await;
        assert_eq!((s, c["status"].as_str()), (200, Some("open")), "{c}");
        assert_eq!(put(&agent, &conv, json!({"name": "mine"})).await.0, 403);
        put(&api, &conv, json!({"owner_id": "ben"})).await;
        assert_eq!(put(&agent, &conv, json!({"status": "pending"})).await.0, 403, "ben's conversation");

        let want = [("pending", "open"), ("snoozed", "pending"), ("resolved", "snoozed"), ("open", "resolved")];
        let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let got = eventually(|| async {
            let got = changes(&hook.requests(), &conv);
            (got.len() >= want.len()).then_some(got)
        })
        .await;
        assert_eq!(got, want, "{backend:?}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_closed_conversation_refuses_sends_and_status_changes_but_keeps_its_history() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config(None, None)).await;
        let api = srv.api(KEY_A);
        let conv = api.conversation("closing").await;
        api.webchat(&conv, "alice").await;
        let path = format!("/v1.0/conversations/{conv}/messages");
        assert_eq!(api.post(&path, json!({"text": "before"})).await.0, 201);
        let mut ws = srv.ws(&api.token("alice", &[&conv]).await).await;
        ws.subscribe(&conv, None).await;

        let (s, c) = put(&api, &conv, json!({"status": "closed"})).await;
        assert_eq!((s, c["status"].as_str()), (200, Some("closed")), "{c}");
        // The end user in the room hears it (the widget says the conversation has ended).
        let f = ws.next_of("status").await;
        assert_eq!((f["conversation_id"].as_str(), f["status"].as_str()), (Some(conv.as_str()), Some("closed")), "{f}");
        let (s, v) = api.post(&path, json!({"text": "after"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("closed")), "{backend:?}: {v}");
        ws.send(json!({"type": "send", "conversation_id": conv, "text": "after", "client_id": "c1"})).await;
        let e = ws.next_of("error").await;
        assert_eq!((e["code"].as_str(), e["client_id"].as_str()), (Some("closed"), Some("c1")), "{e}");
        for status in ["open", "resolved", "snoozed"] {
            let mut body = json!({"status": status});
            if status == "snoozed" {
                body["snoozed_until"] = json!(in_secs(60));
            }
            let (s, v) = put(&api, &conv, body).await;
            assert_eq!((s, v["error"]["code"].as_str()), (409, Some("closed")), "{status}: {v}");
        }
        assert_eq!(put(&api, &conv, json!({"status": "closed"})).await.0, 200, "closing again changes nothing");
        let (s, h) = api.get(&path).await;
        assert_eq!((s, h["result"].as_array().map(Vec::len)), (200, Some(1)), "history kept: {h}");
        assert_eq!(status_of(&api, &conv).await["status"], "closed");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_snoozed_conversation_opens_again_when_its_time_comes() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config(None, None)).await;
        let api = srv.api(KEY_A);
        let hook = updates_hook(&api).await;
        let conv = api.conversation("snooze").await;
        let (s, c) = put(&api, &conv, json!({"status": "snoozed", "snoozed_until": in_secs(1)})).await;
        assert_eq!(s, 200, "{c}");
        assert_eq!(status_of(&api, &conv).await["status"], "snoozed", "not before its time");
        let c = until_status(&api, &conv, "open").await;
        assert_eq!(c["snoozed_until"], Value::Null, "{backend:?}: {c}");
        let got = eventually(|| async {
            let got = changes(&hook.requests(), &conv);
            (got.len() >= 2).then_some(got)
        })
        .await;
        assert_eq!(got[1], ("open".to_string(), "snoozed".to_string()), "{backend:?}");
        srv.stop().await;
    })
    .await;
}

/// Posts Twilio's inbound SMS fixture from `+14155550100` with message sid `sid`, signed.
async fn sms(srv: &TestServer, account: &str, sid: &str, text: &str) {
    let form = crate::common::channels::fixture("twilio_inbound_sms.form")
        .replace("SM3d1c29a4b7c04a8a9bd2a1f1e9d6b1a0", sid)
        .replace("Hi%2C+I+need+help+with+my+order", text);
    let url = hook_url(srv, "twilio", account);
    let params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes()).into_owned().collect();
    let headers = [
        ("content-type", "application/x-www-form-urlencoded".to_string()),
        ("x-twilio-signature", signature(TOKEN, &url, &params)),
    ];
    let r = post_webhook(srv, "twilio", account, &headers, &form).await;
    assert_eq!(r.status(), 200);
}

async fn twilio_account(srv: &TestServer) -> String {
    let body = channels::twilio_account("support line", "+15005550006", TOKEN, "http://127.0.0.1:9");
    create_account(srv, body, &[TOKEN]).await["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_inbound_sms_reopens_a_resolved_conversation() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config(None, None)).await;
        let api = srv.api(KEY_A);
        let acc = twilio_account(&srv).await;
        sms(&srv, &acc, "SM00000000000000000000000000000001", "hello").await;
        let conv = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();
        assert_eq!(put(&api, &conv, json!({"status": "resolved"})).await.0, 200);
        sms(&srv, &acc, "SM00000000000000000000000000000002", "again").await;
        assert_eq!(status_of(&api, &conv).await["status"], "open", "{backend:?}");
        assert_eq!(conversations(&srv).await.len(), 1, "the same room");
        assert_eq!(messages(&srv, &conv).await.len(), 2);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn timers_resolve_then_close_a_quiet_room_and_the_next_sms_opens_a_new_one() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config(Some(1), Some(1))).await;
        let api = srv.api(KEY_A);
        let hook = updates_hook(&api).await;
        let acc = twilio_account(&srv).await;
        sms(&srv, &acc, "SM00000000000000000000000000000001", "hello").await;
        let old = conversations(&srv).await[0]["id"].as_str().unwrap().to_string();
        // A conversation's own timer wins over the tenant's: this one never resolves.
        let kept = api.conversation("kept").await;
        let (s, c) = put(&api, &kept, json!({"timers": {"resolve_after": "P1D"}})).await;
        assert_eq!((s, &c["timers"]["resolve_after"]), (200, &json!(86_400)), "{c}");

        until_status(&api, &old, "resolved").await;
        until_status(&api, &old, "closed").await;
        let want = [("resolved", "open"), ("closed", "resolved")].map(|(a, b)| (a.to_string(), b.to_string()));
        // The webhook deliveries trail the status a reader already sees: wait for both.
        let got = eventually(|| async {
            let got = changes(&hook.requests(), &old);
            (got.len() >= want.len()).then_some(got)
        })
        .await;
        assert_eq!(got, want, "{backend:?}");
        assert_eq!(status_of(&api, &kept).await["status"], "open");

        sms(&srv, &acc, "SM00000000000000000000000000000002", "me again").await;
        let convs = conversations(&srv).await;
        let new: Vec<&str> = convs
            .iter()
            .filter_map(|c| c["id"].as_str())
            .filter(|c| ![&old, &kept].contains(&&c.to_string()))
            .collect();
        assert_eq!(new.len(), 1, "{backend:?}: a new room for the same number: {convs:?}");
        let texts = |ms: Vec<Value>| ms.iter().map(|m| m["text"].as_str().unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(texts(messages(&srv, new[0]).await), ["me again"]);
        assert_eq!(texts(messages(&srv, &old).await), ["hello"], "the closed room keeps its history");
        assert_eq!(status_of(&api, new[0]).await["status"], "open");
        let contact_of = async |conv: &str| {
            let (_, p) = api.get(&format!("/v1.0/conversations/{conv}/participants")).await;
            p["result"][0]["contact_id"].as_str().unwrap().to_string()
        };
        assert_eq!(contact_of(new[0]).await, contact_of(&old).await, "{backend:?}: the same contact");
        let (_, list) = api.get(&format!("/v1.0/contacts/{}/conversations", contact_of(&old).await)).await;
        let listed: Vec<&str> = list["result"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(listed, [new[0], old.as_str()], "{backend:?}: the contact's rooms, newest first");

        // Deleting the closed room leaves the number bound to its new one.
        assert_eq!(api.delete(&format!("/v1.0/conversations/{old}")).await.0, 200);
        sms(&srv, &acc, "SM00000000000000000000000000000003", "still me").await;
        assert_eq!(texts(messages(&srv, new[0]).await), ["me again", "still me"], "{backend:?}");
        assert_eq!(conversations(&srv).await.len(), 2, "no third room");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn on_redis_two_nodes_fire_each_timer_exactly_once() {
    let redis = RedisServer::start().await;
    let node = || {
        let mut c = config(Some(1), Some(1));
        c.store.backend = switchboard::config::Backend::Redis;
        c.redis.url = redis.url();
        TestServer::start_on(Backend::Memory, c)
    };
    let (a, b) = (node().await, node().await);
    let api = a.api(KEY_A);
    let hook = updates_hook(&api).await;
    let mut convs = Vec::new();
    for i in 0..6 {
        let c = api.conversation(&format!("quiet {i}")).await;
        // Half of them written to through the other node.
        if i % 2 == 1 {
            let (s, v) = b.api(KEY_A).post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "hi"})).await;
            assert_eq!(s, 201, "{v}");
        }
        convs.push(c);
    }
    for c in &convs {
        until_status(&api, c, "closed").await;
    }
    // Time for a duplicate to show up, were there one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let want = [("resolved", "open"), ("closed", "resolved")].map(|(a, b)| (a.to_string(), b.to_string()));
    for c in &convs {
        assert_eq!(changes(&hook.requests(), c), want, "{c}");
    }
    a.stop().await;
    b.stop().await;
}
