//! The post path's membership cache, as a user sees it: a participant change made anywhere
//! (this node, or another node on the same Redis) reaches the very next posts — their channel
//! deliveries and the author check — even though posts no longer re-read the participant list.

use crate::common::channels::twilio_account;
use crate::common::redis::{Node, RedisServer};
use crate::common::{Api, Backend, KEY_A, TestServer, Ws, on_every_backend, test_config};
use serde_json::{Value, json};
use std::time::Duration;

/// A Twilio account whose API nobody answers (deliveries are planned, then fail: fine here).
async fn sms_account(api: &Api) -> String {
    let body = twilio_account("line", "+15005550006", "t0k", "http://127.0.0.1:9");
    let (s, a) = api.post("/v1.0/conversation_accounts", body).await;
    assert_eq!(s, 201, "{a}");
    a["id"].as_str().unwrap().to_string()
}

async fn add_sms(api: &Api, conv: &str, account: &str, number: &str) -> String {
    let body = json!({"address": {"type": "tel", "target": number}, "account_id": account});
    let (s, p) = api.post(&format!("/v1.0/conversations/{conv}/participants"), body).await;
    assert_eq!(s, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

/// Sends `text` over `ws` and returns the stored message (read back over REST).
async fn post_ws(ws: &mut Ws, api: &Api, conv: &str, text: &str) -> Value {
    ws.send(json!({"type": "send", "conversation_id": conv, "text": text})).await;
    let ack = loop {
        // Messages and delivery updates of earlier posts arrive in between.
        let f = ws.next().await;
        if f["type"] == "ack" {
            break f;
        }
    };
    let id = ack["message_id"].as_str().unwrap_or_else(|| panic!("ack: {ack}"));
    let (s, m) = api.get(&format!("/v1.0/conversations/{conv}/messages/{id}")).await;
    assert_eq!(s, 200, "{m}");
    m
}

fn delivered_to(m: &Value) -> Vec<String> {
    let mut to: Vec<String> = m["deliveries"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["to"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    to.sort();
    to
}

#[tokio::test]
async fn a_participant_change_reaches_the_next_post_on_the_same_node() {
    on_every_backend(async |backend: Backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let conv = api.conversation("members").await;
        api.webchat(&conv, "alice").await;
        let mut ws = srv.ws(&api.token("alice", &[&conv]).await).await;
        ws.subscribe(&conv, None).await;
        let account = sms_account(&api).await;
        // The room is now cached on this node (a subscriber, and a post read it).
        assert!(delivered_to(&post_ws(&mut ws, &api, &conv, "one").await).is_empty());
        let bob = add_sms(&api, &conv, &account, "+14155550100").await;
        let m = post_ws(&mut ws, &api, &conv, "two").await;
        assert_eq!(delivered_to(&m), vec!["+14155550100"], "{backend:?}: the new participant gets it");
        add_sms(&api, &conv, &account, "+14155550101").await;
        assert_eq!(delivered_to(&post_ws(&mut ws, &api, &conv, "three").await), vec!["+14155550100", "+14155550101"]);
        let (s, _) = api.delete(&format!("/v1.0/conversations/{conv}/participants/{bob}")).await;
        assert_eq!(s, 200);
        let m = post_ws(&mut ws, &api, &conv, "four").await;
        assert_eq!(delivered_to(&m), vec!["+14155550101"], "{backend:?}: the removed one does not");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_new_webchat_participant_can_post_at_once_into_a_cached_room() {
    on_every_backend(async |backend: Backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let conv = api.conversation("members").await;
        api.webchat(&conv, "alice").await;
        let mut alice = srv.ws(&api.token("alice", &[&conv]).await).await;
        alice.subscribe(&conv, None).await;
        post_ws(&mut alice, &api, &conv, "cached now").await;
        api.webchat(&conv, "carol").await;
        let mut carol = srv.ws(&api.token("carol", &[&conv]).await).await;
        carol.send(json!({"type": "send", "conversation_id": conv, "text": "hi", "client_id": "c1"})).await;
        let ack = carol.next_of("ack").await;
        assert_eq!((ack["client_id"].as_str(), ack["seq"].as_u64()), (Some("c1"), Some(2)), "{backend:?}: {ack}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_second_node_on_the_same_redis_sees_membership_changes() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let (a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));
    let (api_a, api_b) = (a.api(KEY_A), b.api(KEY_A));
    let conv = api_a.conversation("two nodes").await;
    api_a.webchat(&conv, "alice").await;
    let mut ws = a.ws(&api_a.token("alice", &[&conv]).await).await;
    ws.subscribe(&conv, None).await;
    let account = sms_account(&api_b).await;
    // Node A caches the room's membership: alice only.
    assert!(delivered_to(&post_ws(&mut ws, &api_a, &conv, "one").await).is_empty());
    // Changed through node B: node A hears of it through the broker. Node A may post once or
    // twice before the publication arrives (pub/sub is asynchronous), never indefinitely.
    let bob = add_sms(&api_b, &conv, &account, "+14155550100").await;
    let mut got = Vec::new();
    for i in 0..50 {
        got = delivered_to(&post_ws(&mut ws, &api_a, &conv, &format!("after add {i}")).await);
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got, vec!["+14155550100"], "node A plans a delivery to the participant added on B");
    let (s, _) = api_b.delete(&format!("/v1.0/conversations/{conv}/participants/{bob}")).await;
    assert_eq!(s, 200);
    for i in 0..50 {
        got = delivered_to(&post_ws(&mut ws, &api_a, &conv, &format!("after removal {i}")).await);
        if got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(got.is_empty(), "node A stops delivering to the participant removed on B: {got:?}");
}

/// The Redis cost of a steady message: in a 2-person chat room that has seen traffic, a
/// WebSocket send is one append script (check, seq, history, publish) plus the event's publish
/// — nothing re-reads the participants or the conversation (both cached on the node). Its
/// `message.created` events reach the tenant's event stream, one per message, in order.
#[tokio::test]
async fn a_steady_message_in_a_small_room_costs_one_append_and_no_membership_read() {
    use crate::common::monitor::Monitor;
    let srv = TestServer::start_on(Backend::Redis, test_config()).await;
    let api = srv.api(KEY_A);
    let conv = api.conversation("steady").await;
    api.webchat(&conv, "alice").await;
    api.webchat(&conv, "bob").await;
    let mut alice = srv.ws(&api.token("alice", &[&conv]).await).await;
    let mut bob = srv.ws(&api.token("bob", &[&conv]).await).await;
    alice.subscribe(&conv, None).await;
    bob.subscribe(&conv, None).await;
    let send = |i: usize| json!({"type": "send", "conversation_id": conv, "text": format!("m{i}"), "client_id": format!("c{i}")});
    for i in 0..5 {
        alice.send(send(i)).await;
        alice.next_of("ack").await;
    }
    const N: usize = 20;
    let monitor = Monitor::start(srv.redis.as_ref().unwrap().port).await;
    for i in 5..5 + N {
        alice.send(send(i)).await;
        alice.next_of("ack").await;
        loop {
            let f = bob.next().await;
            if f["type"] == "message" && f["message"]["text"] == format!("m{i}") {
                break;
            }
        }
    }
    // Top-level commands on this room's keys (a script's inner commands are logged as `lua`;
    // background stream readers touch no room key).
    let room_cmds: Vec<String> = monitor
        .lines()
        .into_iter()
        .filter(|l| !l.contains(" lua]") && l.contains(&format!("{{{conv}}}")))
        .map(|l| l.split('"').nth(1).unwrap_or("?").to_uppercase())
        .collect();
    let count = |c: &str| room_cmds.iter().filter(|x| *x == c).count();
    assert_eq!(count("EVALSHA"), N, "one append script per message: {room_cmds:?}");
    for read in ["HMGET", "HGET", "HGETALL", "HVALS", "SMEMBERS", "HSCAN", "ZRANGE"] {
        assert_eq!(count(read), 0, "no membership or conversation read on the post path ({read}): {room_cmds:?}");
    }
    assert!(room_cmds.len() <= N + 2, "{} room commands for {N} messages: {room_cmds:?}", room_cmds.len());
    // The event stream: every message's `message.created`, in the order posted.
    let want: Vec<String> = (0..5 + N).map(|i| format!("m{i}")).collect();
    let mut redis = srv.redis.as_ref().unwrap().connection().await;
    let pattern = format!("*:events:{{{}}}:stream", crate::common::redis::tenant_id("a"));
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut redis).await.unwrap();
    let stream = keys.first().unwrap_or_else(|| panic!("no event stream {pattern}"));
    let mut got: Vec<String> = Vec::new();
    for _ in 0..100 {
        let entries: Vec<(String, Vec<(String, String)>)> =
            redis::cmd("XRANGE").arg(stream).arg("-").arg("+").query_async(&mut redis).await.unwrap();
        got = entries
            .iter()
            .filter_map(|(_, fields)| serde_json::from_str::<Value>(&fields.first()?.1).ok())
            .filter(|e| e["type"] == "message.created" && e["conversation_id"] == conv.as_str())
            .filter_map(|e| e["data"]["text"].as_str().map(String::from))
            .collect();
        if got.len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got, want, "one event per message, in order");
}
