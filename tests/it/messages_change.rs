//! Messages that change after they were sent (edit, delete → tombstone) and private notes
//! (`visibility: internal`), as users see them: live frames, REST history, resume, and who may
//! do what. Every scenario runs on both backends.

use crate::common::{Api, Backend, KEY_A, TestServer, Ws, on_every_backend, test_config};
use serde_json::{Value, json};
use switchboard::broker::EventKind;

/// Proves nothing else is queued for `ws`: a ping's pong is the next real frame.
async fn nothing_more(ws: &mut Ws) {
    ws.send(json!({"type": "ping", "id": "end"})).await;
    let f = ws.next_real().await;
    assert_eq!((f["type"].as_str(), f["id"].as_str()), (Some("pong"), Some("end")), "unexpected frame: {f}");
}

async fn history(api: &Api, c: &str) -> Vec<Value> {
    let (s, v) = api.get(&format!("/v1.0/conversations/{c}/messages")).await;
    assert_eq!(s, 200, "{v}");
    v["result"].as_array().unwrap().clone()
}

fn texts(msgs: &[Value]) -> Vec<&str> {
    msgs.iter().map(|m| m["text"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn edit_and_delete_reach_live_subscribers_history_and_events() {
    on_every_backend(edit_and_delete_on).await;
}

async fn edit_and_delete_on(backend: Backend) {
    let srv = TestServer::start_on(backend, test_config()).await;
    let api = srv.api(KEY_A);
    let c = api.conversation("edits").await;
    api.webchat(&c, "alice").await;
    api.webchat(&c, "bob").await;
    let (alice_t, bob_t) = (api.token("alice", &[&c]).await, api.token("bob", &[&c]).await);
    let (alice, bob) = (srv.as_token(&alice_t), srv.as_token(&bob_t));
    let mut events = srv.state.broker.events();
    let mut alice_ws = srv.ws(&alice_t).await;
    alice_ws.subscribe(&c, None).await;
    let mut bob_ws = srv.ws(&bob_t).await;
    bob_ws.subscribe(&c, None).await;
    alice_ws.send(json!({"type": "send", "conversation_id": c, "text": "helo", "client_id": "a1"})).await;
    let ack = alice_ws.next_of("ack").await;
    let id = ack["message_id"].as_str().unwrap().to_string();
    let path = format!("/v1.0/conversations/{c}/messages/{id}");
    assert_eq!(bob_ws.next_real().await["message"]["text"], "helo");

    // Only the author (or an API key) may change it.
    let (s, e) = bob.put(&path, json!({"text": "hacked"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")), "{backend:?}: {e}");
    assert_eq!(bob.delete(&path).await.0, 403, "{backend:?}");
    let (s, e) = alice.put(&path, json!({"text": "x".repeat(70_000)})).await;
    assert_eq!(s, 413, "{backend:?}: same limit as posting: {e}");
    let (s, e) = alice.put(&path, json!({"text": "  "})).await;
    assert_eq!(s, 422, "{backend:?}: {e}");

    let (s, edited) = alice.put(&path, json!({"text": "hello"})).await;
    assert_eq!(s, 200, "{backend:?}: {edited}");
    assert_eq!((edited["text"].as_str(), edited["seq"].as_u64()), (Some("hello"), Some(1)));
    assert!(edited["edited_at"].is_string(), "{edited}");
    assert!(edited.get("deleted_at").is_none(), "{edited}");
    let f = bob_ws.next_real().await;
    assert_eq!(f["type"], "message_updated", "{backend:?}: {f}");
    assert_eq!((f["message"]["id"].as_str(), f["message"]["text"].as_str()), (Some(id.as_str()), Some("hello")));
    assert_eq!(f["message"]["edited_at"], edited["edited_at"]);
    let h = history(&api, &c).await;
    assert_eq!((texts(&h), &h[0]["edited_at"]), (vec!["hello"], &edited["edited_at"]), "{backend:?}");

    // An API key may edit anybody's message.
    let (s, v) = api.put(&path, json!({"text": "hello!"})).await;
    assert_eq!((s, v["text"].as_str()), (200, Some("hello!")), "{backend:?}: {v}");
    assert_eq!(bob_ws.next_real().await["message"]["text"], "hello!");

    // Delete: a tombstone that keeps id and seq.
    let (s, gone) = alice.delete(&path).await;
    assert_eq!(s, 200, "{backend:?}: {gone}");
    assert_eq!((gone["text"].as_str(), gone["medias"].as_array().map(Vec::len)), (Some(""), Some(0)));
    assert_eq!(gone["seq"], 1);
    assert!(gone["deleted_at"].is_string(), "{gone}");
    let f = bob_ws.next_real().await;
    assert_eq!((f["type"].as_str(), &f["message"]["deleted_at"]), (Some("message_updated"), &gone["deleted_at"]));
    assert_eq!(f["message"]["text"], "");
    let (s, again) = alice.delete(&path).await;
    assert_eq!((s, &again), (200, &gone), "{backend:?}: a second delete answers the same tombstone");
    let (s, e) = alice.put(&path, json!({"text": "back"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("conflict")), "{backend:?}: {e}");
    let (s, e) = api.put(&path, json!({"text": "back"})).await;
    assert_eq!(s, 409, "{backend:?}: {e}");
    assert_eq!(api.put(&format!("/v1.0/conversations/{c}/messages/{c}"), json!({"text": "x"})).await.0, 404);

    // History and a resume show the tombstone in its place; the next message follows on.
    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "after"})).await;
    let h = history(&api, &c).await;
    assert_eq!(texts(&h), vec!["", "after"], "{backend:?}");
    assert_eq!((h[0]["seq"].as_u64(), h[0]["deleted_at"].is_string()), (Some(1), true));
    let mut late = srv.ws(&bob_t).await;
    let sub = late.subscribe(&c, Some(0)).await;
    assert_eq!(sub["recovered"], true, "{sub}");
    let first = late.next_real().await;
    assert_eq!((first["message"]["seq"].as_u64(), &first["message"]["deleted_at"]), (Some(1), &gone["deleted_at"]));
    assert_eq!(late.next_real().await["message"]["text"], "after");
    nothing_more(&mut late).await;
    assert_eq!(bob_ws.next_real().await["message"]["text"], "after");
    nothing_more(&mut bob_ws).await;

    // An agent token edits what its agent wrote, and nothing else.
    let (_, ann) = api.post("/v1.0/tokens", json!({"identity": "ann", "role": "agent"})).await;
    let ann_t = ann["token"].as_str().unwrap().to_string();
    let mut ann_ws = srv.ws(&ann_t).await;
    ann_ws.send(json!({"type": "send", "conversation_id": c, "text": "agent here", "client_id": "g1"})).await;
    let mine = ann_ws.next_of("ack").await["message_id"].as_str().unwrap().to_string();
    let ann = srv.as_token(&ann_t);
    let (s, v) = ann.put(&format!("/v1.0/conversations/{c}/messages/{mine}"), json!({"text": "agent, here"})).await;
    assert_eq!((s, v["text"].as_str()), (200, Some("agent, here")), "{backend:?}: {v}");
    assert_eq!(ann.put(&path, json!({"text": "not mine"})).await.0, 403, "{backend:?}");

    // Outside consumers: two message.updated (the edits), one message.deleted.
    let mut kinds = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if ev.data.value()["id"] == id.as_str() && ev.kind != EventKind::MessageCreated {
            kinds.push(ev.kind);
        }
    }
    assert_eq!(kinds, [EventKind::MessageUpdated, EventKind::MessageUpdated, EventKind::MessageDeleted], "{backend:?}");
    srv.stop().await;
}

#[tokio::test]
async fn private_notes_reach_operators_and_agents_never_end_users() {
    on_every_backend(private_notes_on).await;
}

async fn private_notes_on(backend: Backend) {
    let srv = TestServer::start_on(backend, test_config()).await;
    let api = srv.api(KEY_A);
    let c = api.conversation("notes").await;
    api.webchat(&c, "alice").await;
    let alice_t = api.token("alice", &[&c]).await;
    let alice = srv.as_token(&alice_t);
    let (_, op) = api.post("/v1.0/tokens", json!({"identity": "sup", "all_conversations": true})).await;
    let op_t = op["token"].as_str().unwrap().to_string();
    let mut alice_ws = srv.ws(&alice_t).await;
    alice_ws.subscribe(&c, None).await;
    let mut op_ws = srv.ws(&op_t).await;
    op_ws.subscribe(&c, None).await;

    let post = |body: Value| {
        let api = api.clone();
        let c = c.clone();
        async move { api.post(&format!("/v1.0/conversations/{c}/messages"), body).await }
    };
    let (s, one) = post(json!({"text": "one"})).await;
    assert_eq!(s, 201, "{one}");
    assert!(one.get("visibility").is_none(), "public is the default: {one}");
    let (s, note) = post(json!({"text": "secret", "visibility": "internal"})).await;
    assert_eq!((s, note["visibility"].as_str(), note["seq"].as_u64()), (201, Some("internal"), Some(2)), "{note}");
    post(json!({"text": "two"})).await;

    // Live: the operator gets all three, the end user the public two.
    let op_seen: Vec<Value> = [op_ws.next_real().await, op_ws.next_real().await, op_ws.next_real().await]
        .into_iter()
        .map(|f| f["message"].clone())
        .collect();
    assert_eq!(texts(&op_seen), vec!["one", "secret", "two"], "{backend:?}");
    assert_eq!(op_seen[1]["visibility"], "internal");
    assert_eq!(alice_ws.next_real().await["message"]["text"], "one", "{backend:?}");
    let f = alice_ws.next_real().await;
    assert_eq!((f["message"]["text"].as_str(), f["message"]["seq"].as_u64()), (Some("two"), Some(3)), "{f}");

    // REST: the end user's history and lookups leave the note out; the API key's has it.
    assert_eq!(texts(&history(&alice, &c).await), vec!["one", "two"], "{backend:?}");
    assert_eq!(texts(&history(&api, &c).await), vec!["one", "secret", "two"], "{backend:?}");
    let note_path = format!("/v1.0/conversations/{c}/messages/{}", note["id"].as_str().unwrap());
    assert_eq!(alice.get(&note_path).await.0, 404, "{backend:?}");
    assert_eq!(api.get(&note_path).await.1["text"], "secret");

    // Resume: a client's replay skips the note (a seq gap), and it counts as recovered.
    for since in [0, 1] {
        let mut again = srv.ws(&alice_t).await;
        let sub = again.subscribe(&c, Some(since)).await;
        assert_eq!((sub["recovered"].as_bool(), sub["seq"].as_u64()), (Some(true), Some(3)), "{backend:?}: {sub}");
        if since == 0 {
            assert_eq!(again.next_real().await["message"]["text"], "one");
        }
        assert_eq!(again.next_real().await["message"]["text"], "two", "{backend:?}");
        nothing_more(&mut again).await;
    }

    // An end user may not write a note; an operator token may, and it stays among staff.
    alice_ws.send(json!({"type": "send", "conversation_id": c, "text": "psst", "visibility": "internal"})).await;
    let e = alice_ws.next_real().await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("forbidden")), "{backend:?}: {e}");
    assert_eq!(alice.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "x"})).await.0, 403);
    op_ws.send(json!({"type": "send", "conversation_id": c, "text": "staff only", "visibility": "internal"})).await;
    let ack = op_ws.next_of("ack").await;
    assert_eq!(ack["seq"], 4, "{ack}");
    // Editing the note tells the staff only.
    let (s, v) = api.put(&note_path, json!({"text": "secret, edited"})).await;
    assert_eq!(s, 200, "{v}");
    loop {
        let f = op_ws.next_real().await;
        if f["type"] == "message_updated" {
            assert_eq!(
                (f["message"]["text"].as_str(), &f["message"]["visibility"]),
                (Some("secret, edited"), &json!("internal"))
            );
            break;
        }
    }
    post(json!({"text": "three"})).await;
    let f = alice_ws.next_real().await;
    assert_eq!(
        (f["type"].as_str(), f["message"]["text"].as_str()),
        (Some("message"), Some("three")),
        "{backend:?}: {f}"
    );
    assert_eq!(f["message"]["seq"], 5);
    nothing_more(&mut alice_ws).await;
    srv.stop().await;
}

/// A gap in live delivery is filled from history; for an end user that fill leaves notes out
/// and moves on past them (no loop, no `recovered: false`). Redis only: it is the backend whose
/// pub/sub link can drop publications (the memory bus never loses one).
#[tokio::test]
async fn a_client_fills_a_live_gap_across_a_note_without_seeing_it() {
    let srv = TestServer::start_on(Backend::Redis, test_config()).await;
    let api = srv.api(KEY_A);
    let c = api.conversation("gap").await;
    api.webchat(&c, "alice").await;
    let alice_t = api.token("alice", &[&c]).await;
    let mut alice_ws = srv.ws(&alice_t).await;
    alice_ws.subscribe(&c, None).await;
    let post = |body: Value| {
        let (api, c) = (api.clone(), c.clone());
        async move {
            let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), body).await;
            assert_eq!(s, 201, "{m}");
        }
    };
    post(json!({"text": "one"})).await;
    assert_eq!(alice_ws.next_real().await["message"]["seq"], 1);

    // Cut the node's pub/sub link and keep it from reconnecting (no connection slot left),
    // so the next publications are lost on the wire; the store's connection stays.
    let mut conn = srv.redis.as_ref().unwrap().connection().await;
    let info: String = redis::cmd("INFO").arg("clients").query_async(&mut conn).await.unwrap();
    let connected: u64 =
        info.lines().find_map(|l| l.strip_prefix("connected_clients:")).and_then(|n| n.trim().parse().ok()).unwrap();
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("maxclients").arg(connected - 1).query_async(&mut conn).await.unwrap();
    let _: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut conn).await.unwrap();
    post(json!({"text": "secret", "visibility": "internal"})).await;
    post(json!({"text": "two"})).await;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxclients").arg(10_000).query_async(&mut conn).await.unwrap();

    // Back online: the fill brings "two" (seq 3), not the note; live delivery then goes on.
    let f = alice_ws.next_real().await;
    assert_eq!((f["message"]["text"].as_str(), f["message"]["seq"].as_u64()), (Some("two"), Some(3)), "{f}");
    post(json!({"text": "three"})).await;
    let f = alice_ws.next_real().await;
    assert_eq!((f["message"]["text"].as_str(), f["message"]["seq"].as_u64()), (Some("three"), Some(4)), "{f}");
    nothing_more(&mut alice_ws).await;
    srv.stop().await;
}
