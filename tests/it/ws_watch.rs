//! What a console page learns over WebSocket besides a room's messages. The live conversation
//! list (`watch_conversations`): what an operator's or an agent's page learns without polling,
//! on both backends, and across nodes sharing one Redis (single server and cluster) — a
//! conversation created or written to on one node reaches a watcher connected to another. And
//! the holder's read marker in `subscribed` (the page's unread divider after a reload).

use crate::common::redis::{Node, RedisCluster, RedisServer, next_within};
use crate::common::{Api, KEY_A, KEY_B, TestServer, Ws, on_every_backend, test_config};
use serde_json::{Value, json};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(400);
const SLOW: Duration = Duration::from_secs(15);

async fn token(api: &Api, body: Value) -> String {
    let (s, v) = api.post("/v1.0/tokens", body).await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// Sends `watch_conversations` and waits for `watching`.
async fn watch(ws: &mut Ws) {
    ws.send(json!({"type": "watch_conversations"})).await;
    assert_eq!(ws.next().await, json!({"type": "watching"}));
}

/// The next `conversation` frame (within `limit`), as `(event, frame)`.
async fn change(ws: &mut Ws, limit: Duration) -> (String, Value) {
    let f = next_within(ws, limit).await.expect("a conversation frame");
    assert_eq!(f["type"], "conversation", "{f}");
    (f["event"].as_str().unwrap().to_string(), f)
}

async fn post(api: &Api, conv: &str, text: &str) -> Value {
    let (s, m) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": text})).await;
    assert_eq!(s, 201, "{m}");
    m
}

/// `switchboard_ws_watchers` as `/metrics` shows it now.
async fn watchers_gauge(srv: &TestServer) -> f64 {
    let text = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("switchboard_ws_watchers")).expect("the gauge is exported");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_operator_page_learns_every_change_to_its_tenants_list() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let mut ws = srv.ws(&token(&api, json!({"identity": "olivia", "all_conversations": true})).await).await;
        watch(&mut ws).await;

        let conv = api.conversation("Inbound from +1415").await;
        let (event, f) = change(&mut ws, Duration::from_secs(5)).await;
        assert_eq!((event.as_str(), f["conversation_id"].as_str()), ("created", Some(conv.as_str())), "{backend:?}");
        assert_eq!(
            (f["conversation"]["name"].as_str(), &f["conversation"]["last_seq"]),
            (Some("Inbound from +1415"), &json!(0))
        );
        assert!(f.get("last_message").is_none(), "{f}");

        // Another tenant's conversation never shows; a message is the room's new last message.
        srv.api(KEY_B).conversation("not yours").await;
        let m = post(&api, &conv, "My parcel never arrived").await;
        let (event, f) = change(&mut ws, Duration::from_secs(5)).await;
        assert_eq!(event, "updated", "{f}");
        assert_eq!(f["last_message"]["id"], m["id"]);
        assert_eq!(f["last_message"]["text"], "My parcel never arrived");
        assert_eq!(f["conversation"]["last_seq"], 1, "the conversation as stored now: {f}");

        let (s, _) = api.put(&format!("/v1.0/conversations/{conv}"), json!({"name": "Sam"})).await;
        assert_eq!(s, 200);
        let (event, f) = change(&mut ws, Duration::from_secs(5)).await;
        assert_eq!((event.as_str(), &f["conversation"]["name"]), ("updated", &json!("Sam")));

        let (s, _) = api.delete(&format!("/v1.0/conversations/{conv}")).await;
        assert_eq!(s, 200);
        let (event, f) = change(&mut ws, Duration::from_secs(5)).await;
        assert_eq!((event.as_str(), f["conversation_id"].as_str()), ("deleted", Some(conv.as_str())));

        // Watching twice just repeats `watching` (still one watcher on the node's gauge);
        // after unwatching nothing more arrives.
        watch(&mut ws).await;
        assert_eq!(watchers_gauge(&srv).await, 1.0, "{backend:?}");
        ws.send(json!({"type": "unwatch_conversations"})).await;
        assert_eq!(ws.next().await, json!({"type": "unwatched"}));
        assert_eq!(watchers_gauge(&srv).await, 0.0, "{backend:?}");
        api.conversation("after unwatch").await;
        assert_eq!(next_within(&mut ws, QUIET).await, None);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn end_user_tokens_may_not_watch_and_bad_frames_are_refused() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let conv = api.conversation("room").await;
        api.webchat(&conv, "alice").await;
        let mut ws = srv.ws(&api.token("alice", &[&conv]).await).await;
        ws.send(json!({"type": "watch_conversations"})).await;
        let f = ws.next().await;
        assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("forbidden")), "{backend:?}: {f}");
        api.conversation("hidden from alice").await;
        assert_eq!(next_within(&mut ws, QUIET).await, None, "nothing leaks to a scoped token");
        ws.send(json!({"type": "watch_conversations", "tenant": "b"})).await;
        assert_eq!(ws.next().await["code"], "bad_frame");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn agents_see_only_their_own_and_unassigned_conversations() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let mut ann = srv.ws(&token(&api, json!({"identity": "ann", "role": "agent"})).await).await;
        watch(&mut ann).await;

        let c1 = api.conversation("first").await;
        let (event, f) = change(&mut ann, Duration::from_secs(5)).await;
        assert_eq!((event.as_str(), f["conversation_id"].as_str()), ("created", Some(c1.as_str())), "{backend:?}");

        // Given to ben: ann is told it left her view, without its contents; its messages stay hidden.
        let owner = json!({"owner_type": "agent", "owner_id": "ben"});
        assert_eq!(api.put(&format!("/v1.0/conversations/{c1}"), owner).await.0, 200);
        let (event, f) = change(&mut ann, Duration::from_secs(5)).await;
        assert_eq!(event, "removed", "{f}");
        assert!(f.get("conversation").is_none(), "{f}");
        post(&api, &c1, "for ben only").await;

        let c2 = api.conversation("second").await;
        let (event, f) = change(&mut ann, Duration::from_secs(5)).await;
        assert_eq!(
            (event.as_str(), f["conversation_id"].as_str()),
            ("created", Some(c2.as_str())),
            "ben's message never came: {f}"
        );
        let owner = json!({"owner_type": "agent", "owner_id": "ann"});
        assert_eq!(api.put(&format!("/v1.0/conversations/{c2}"), owner).await.0, 200);
        let (event, f) = change(&mut ann, Duration::from_secs(5)).await;
        assert_eq!((event.as_str(), &f["conversation"]["owner_id"]), ("updated", &json!("ann")));
        post(&api, &c2, "for ann").await;
        let (_, f) = change(&mut ann, Duration::from_secs(5)).await;
        assert_eq!(f["last_message"]["text"], "for ann");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_refresh_to_an_agent_token_narrows_the_watch() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let mut ws = srv.ws(&token(&api, json!({"identity": "ann", "all_conversations": true})).await).await;
        watch(&mut ws).await;
        let agent = token(&api, json!({"identity": "ann", "role": "agent"})).await;
        ws.send(json!({"type": "refresh", "token": agent})).await;
        assert_eq!(ws.next().await["type"], "refreshed", "{backend:?}");
        assert_eq!(next_within(&mut ws, SLOW).await, Some(json!({"type": "watching"})), "watch registered anew");
        let c = api.conversation("for ben").await;
        assert_eq!(change(&mut ws, Duration::from_secs(5)).await.0, "created");
        let owner = json!({"owner_type": "agent", "owner_id": "ben"});
        assert_eq!(api.put(&format!("/v1.0/conversations/{c}"), owner).await.0, 200);
        assert_eq!(change(&mut ws, Duration::from_secs(5)).await.0, "removed", "now seen as agent ann");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn subscribed_names_the_holders_participant_and_read_marker() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("room").await;
    let pid = api.webchat(&c, "alice").await;
    let mut alice = srv.ws(&api.token("alice", &[&c]).await).await;
    let s = alice.subscribe(&c, None).await;
    assert_eq!((&s["participant_id"], &s["last_read_seq"]), (&json!(pid), &json!(0)), "{s}");
    for i in 1..=3 {
        api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": format!("m{i}")})).await;
    }
    for i in 1..=3 {
        assert_eq!(alice.next_of("message").await["message"]["seq"], i);
    }
    alice.send(json!({"type": "read", "conversation_id": c, "seq": 2})).await;
    assert_eq!(alice.next_of("read").await["seq"], 2);
    drop(alice);
    let mut again = srv.ws(&api.token("alice", &[&c]).await).await;
    let s = again.subscribe(&c, Some(3)).await;
    assert_eq!((s["seq"].as_u64(), s["last_read_seq"].as_u64()), (Some(3), Some(2)), "{s}");
    srv.stop().await;
}

/// A watcher on node `a` sees what is done through node `b`.
async fn across_nodes(a: &Node, b: &Node) {
    let mut ws = a.ws(&token(&a.api(KEY_A), json!({"identity": "olivia", "all_conversations": true})).await).await;
    ws.send(json!({"type": "watch_conversations"})).await;
    assert_eq!(next_within(&mut ws, SLOW).await, Some(json!({"type": "watching"})));
    let api = b.api(KEY_A);
    let conv = api.conversation("made on node b").await;
    let (event, f) = change(&mut ws, SLOW).await;
    assert_eq!((event.as_str(), f["conversation_id"].as_str()), ("created", Some(conv.as_str())));
    for i in 1..=3 {
        post(&api, &conv, &format!("m{i}")).await;
    }
    // Coalescing may fold the burst; the newest message always arrives, last.
    let mut last = Value::Null;
    while last["last_message"]["text"] != "m3" {
        let (event, f) = change(&mut ws, SLOW).await;
        assert_eq!(event, "updated", "{f}");
        last = f;
    }
    assert_eq!(last["conversation"]["last_seq"], 3);
}

#[tokio::test]
async fn watchers_on_one_node_see_changes_made_on_another_and_resync_after_a_redis_outage() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let (a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));
    across_nodes(&a, &b).await;

    // Redis goes away and comes back: the page is told to reload its list (events of the
    // outage are gone), then follows changes again.
    let mut ws = a.ws(&token(&a.api(KEY_A), json!({"identity": "olivia", "all_conversations": true})).await).await;
    watch(&mut ws).await;
    redis.restart().await;
    assert_eq!(next_within(&mut ws, SLOW).await, Some(json!({"type": "watching"})), "resync after the outage");
    // Node b's own Redis connection may still be reconnecting: retry until it answers.
    let api = b.api(KEY_A);
    let deadline = tokio::time::Instant::now() + SLOW;
    let conv = loop {
        let (s, v) = api.post("/v1.0/conversations", json!({"name": "after the outage"})).await;
        if s == 201 {
            break v["id"].as_str().unwrap().to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "node b cannot write after the outage: {s} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (event, f) = change(&mut ws, SLOW).await;
    assert_eq!((event.as_str(), f["conversation_id"].as_str()), ("created", Some(conv.as_str())));
}

#[tokio::test]
async fn watchers_follow_the_list_across_nodes_on_a_redis_cluster() {
    let cluster = RedisCluster::start().await;
    let url = cluster.url();
    let (a, b) = tokio::join!(Node::start(&url, true), Node::start(&url, true));
    across_nodes(&a, &b).await;
}
