//! The post path's conversation cache across nodes, as users see it: a node that keeps a room's
//! conversation in memory (status, owner, timers) still answers a post exactly as if it had
//! read it, right after a close, a resolve or a reassignment made through another node on the
//! same Redis.
//!
//! Each test first makes node A cache the room (a subscriber there, and a post that read it),
//! then changes the room through node B, then posts through node A.

use crate::common::channels::{fixture, post, twilio_account};
use crate::common::redis::{Node, RedisServer};
use crate::common::{Api, KEY_A, Ws};
use serde_json::{Value, json};
use switchboard::channels::twilio::signature;

const TOKEN: &str = "twilio-auth-token-0123456789";

async fn two_nodes() -> (RedisServer, Node, Node) {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let (a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));
    (redis, a, b)
}

/// Sends `text` as a `send` frame and returns the answer to it (`ack` or `error`).
async fn send(ws: &mut Ws, conv: &str, text: &str, client_id: &str) -> Value {
    ws.send(json!({"type": "send", "conversation_id": conv, "text": text, "client_id": client_id})).await;
    loop {
        let f = ws.next().await;
        if matches!(f["type"].as_str(), Some("ack" | "error")) && f["client_id"] == client_id {
            return f;
        }
    }
}

async fn status_of(api: &Api, conv: &str) -> String {
    let (s, c) = api.get(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!(s, 200, "{c}");
    c["status"].as_str().unwrap().to_string()
}

async fn set_status(api: &Api, conv: &str, status: &str) {
    let (s, c) = api.put(&format!("/v1.0/conversations/{conv}"), json!({"status": status})).await;
    assert_eq!(s, 200, "{c}");
}

/// A room on node A with alice (webchat) subscribed there, after one post that cached it.
async fn cached_room(a: &Node, api: &Api) -> (String, Ws) {
    let conv = api.conversation("cached").await;
    api.webchat(&conv, "alice").await;
    let mut alice = a.ws(&api.token("alice", &[&conv]).await).await;
    alice.subscribe(&conv, None).await;
    assert_eq!(send(&mut alice, &conv, "hello", "c0").await["type"], "ack");
    (conv, alice)
}

#[tokio::test]
async fn a_close_through_another_node_refuses_the_very_next_post() {
    let (_redis, a, b) = two_nodes().await;
    let (api_a, api_b) = (a.api(KEY_A), b.api(KEY_A));
    let (conv, mut alice) = cached_room(&a, &api_a).await;
    set_status(&api_b, &conv, "closed").await;
    // No wait for the change to reach node A: the answer is exact at once.
    let e = send(&mut alice, &conv, "anyone?", "c1").await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("closed")), "{e}");
    let (s, page) = api_b.get(&format!("/v1.0/conversations/{conv}/messages")).await;
    assert_eq!((s, page["result"].as_array().map(Vec::len)), (200, Some(1)), "nothing stored: {page}");
}

/// A signed Twilio SMS from the usual sender to `account`, through `node`.
async fn sms(node: &Node, account: &str, sid: &str, text: &str) {
    let form = fixture("twilio_inbound_sms.form")
        .replace("SM3d1c29a4b7c04a8a9bd2a1f1e9d6b1a0", sid)
        .replace("Hi%2C+I+need+help+with+my+order", text);
    let url = node.url(&format!("/v1.0/hooks/twilio/{account}"));
    let params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes()).into_owned().collect();
    let headers = [
        ("content-type", "application/x-www-form-urlencoded".to_string()),
        ("x-twilio-signature", signature(TOKEN, &url, &params)),
    ];
    assert_eq!(post(&url, &headers, &form).await.status(), 200);
}

#[tokio::test]
async fn a_resolve_through_another_node_is_reopened_by_the_next_inbound_message_here() {
    let (_redis, a, b) = two_nodes().await;
    let (api_a, api_b) = (a.api(KEY_A), b.api(KEY_A));
    let body = twilio_account("line", "+15005550006", TOKEN, "http://127.0.0.1:9");
    let (s, account) = api_a.post("/v1.0/conversation_accounts", body).await;
    assert_eq!(s, 201, "{account}");
    let account = account["id"].as_str().unwrap();
    sms(&a, account, "SM00000000000000000000000000000001", "hello").await;
    let (_, page) = api_a.get("/v1.0/conversations").await;
    let conv = page["result"][0]["id"].as_str().unwrap().to_string();
    // A subscriber on node A, and a second message there: the room is cached as open.
    api_a.webchat(&conv, "alice").await;
    let mut alice = a.ws(&api_a.token("alice", &[&conv]).await).await;
    alice.subscribe(&conv, None).await;
    sms(&a, account, "SM00000000000000000000000000000002", "still there").await;
    set_status(&api_b, &conv, "resolved").await;
    sms(&a, account, "SM00000000000000000000000000000003", "one more thing").await;
    assert_eq!(status_of(&api_b, &conv).await, "open", "the inbound message through A reopened it");
}

#[tokio::test]
async fn a_reassignment_through_another_node_stops_the_agent_writing_here() {
    let (_redis, a, b) = two_nodes().await;
    let (api_a, api_b) = (a.api(KEY_A), b.api(KEY_A));
    let conv = api_a.conversation("assigned").await;
    let token = |body: Value| async {
        let (s, v) = api_a.post("/v1.0/tokens", body).await;
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    };
    // A supervisor keeps the room subscribed on node A (so it stays cached there) after ann
    // loses it.
    let mut sup = a.ws(&token(json!({"identity": "sup", "all_conversations": true})).await).await;
    sup.subscribe(&conv, None).await;
    let mut ann = a.ws(&token(json!({"identity": "ann", "role": "agent"})).await).await;
    ann.subscribe(&conv, None).await;
    assert_eq!(send(&mut ann, &conv, "I'll take this", "a1").await["type"], "ack", "unassigned: any agent");
    // Her first send made her a participant (a change: node A dropped the room). Once her
    // message is back (it travels behind that change), the next send caches the room again.
    loop {
        let f = ann.next().await;
        if f["type"] == "message" && f["message"]["client_id"] == "a1" {
            break;
        }
    }
    assert_eq!(send(&mut ann, &conv, "on it", "a1b").await["type"], "ack");
    let (s, v) =
        api_b.put(&format!("/v1.0/conversations/{conv}"), json!({"owner_type": "agent", "owner_id": "ben"})).await;
    assert_eq!(s, 200, "{v}");
    // Ann's connection on A hears of it (the `assigned` frame travels behind the change).
    loop {
        let f = ann.next().await;
        if f["type"] == "assigned" {
            assert_eq!(f["owner_id"], "ben");
            break;
        }
    }
    let e = send(&mut ann, &conv, "still mine?", "a2").await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("forbidden")), "{e}");
}
