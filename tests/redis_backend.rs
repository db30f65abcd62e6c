//! The Redis backend end to end: real `redis-server` processes (single and 3-master cluster)
//! and real `switchboard` processes, killed and restarted for the fault scenarios.
//!
//! Every wait is on a condition with a deadline; nothing sleeps and hopes.

mod common;

use common::redis::{Node, RedisCluster, RedisServer, wait_until};
use common::{KEY_A, KEY_B, Ws};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard::config::TenantConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

fn tenant_id(name: &str) -> Uuid {
    TenantConfig { id: None, name: name.into(), api_keys: vec![] }.tenant_id()
}

/// The next JSON text frame within `limit`, or `None`.
async fn next_within(ws: &mut Ws, limit: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, ws.stream.next()).await.ok()?? {
            Ok(WsMessage::Text(t)) => return Some(serde_json::from_str(&t).expect("json frame")),
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
            other => panic!("unexpected websocket event {other:?}"),
        }
    }
}

/// Reads frames until a `message` frame with seq `last` arrived; returns every message frame's
/// message (other frames — acks, presence, typing — are skipped).
async fn messages_until(ws: &mut Ws, last: u64, limit: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while got.last().and_then(|m: &Value| m["seq"].as_u64()) != Some(last) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f = next_within(ws, left).await.unwrap_or_else(|| panic!("no message seq {last} in {limit:?}; got {got:?}"));
        if f["type"] == "message" {
            got.push(f["message"].clone());
        }
    }
    got
}

fn seqs(msgs: &[Value]) -> Vec<u64> {
    msgs.iter().map(|m| m["seq"].as_u64().expect("seq")).collect()
}

/// A room with webchat participants `identities`, and a token for each.
async fn room(api: &common::Api, name: &str, identities: &[&str]) -> (String, Vec<String>) {
    let conv = api.conversation(name).await;
    let mut tokens = Vec::new();
    for id in identities {
        api.webchat(&conv, id).await;
        tokens.push(api.token(id, &[&conv]).await);
    }
    (conv, tokens)
}

async fn history(api: &common::Api, conv: &str) -> Vec<Value> {
    let (s, v) = api.get(&format!("/v1.0/conversations/{conv}/messages?page_size=100")).await;
    assert_eq!(s, 200, "{v}");
    v["result"].as_array().expect("result").clone()
}

#[tokio::test]
async fn acked_messages_survive_a_node_sigkill_and_seq_continues() {
    let redis = RedisServer::start().await;
    let mut node = Node::start(&redis.url(), false).await;
    let api = node.api(KEY_A);
    let (conv, tokens) = room(&api, "persist", &["alice"]).await;
    let mut acked = BTreeMap::new();
    for i in 1..=10 {
        let (s, m) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": format!("m{i}"), "client_id": format!("c{i}")})).await;
        assert_eq!(s, 201, "{m}");
        acked.insert(m["seq"].as_u64().unwrap(), m["id"].clone());
    }
    let mut ws = node.ws(&tokens[0]).await;
    let sub = ws.subscribe(&conv, None).await;
    ws.send(json!({"type": "send", "conversation_id": conv, "text": "over ws", "client_id": "w1"})).await;
    let ack = ws.next_of("ack").await;
    acked.insert(ack["seq"].as_u64().unwrap(), ack["message_id"].clone());
    assert_eq!(acked.keys().copied().collect::<Vec<_>>(), (1..=11).collect::<Vec<_>>());

    node.restart().await;

    let h = history(&api, &conv).await;
    let stored: BTreeMap<u64, Value> = h.iter().map(|m| (m["seq"].as_u64().unwrap(), m["id"].clone())).collect();
    assert_eq!(stored, acked, "every acked message is there, at its seq");
    let (s, dup) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": "again", "client_id": "c3"})).await;
    assert_eq!((s, &dup["seq"], &dup["id"]), (200, &json!(3), &acked[&3]), "retry keys survive the restart");
    let (s, next) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": "after"})).await;
    assert_eq!((s, next["seq"].as_u64()), (201, Some(12)));
    let mut ws = node.ws(&tokens[0]).await;
    let resumed = ws.subscribe(&conv, Some(10)).await;
    assert_eq!((&resumed["epoch"], &resumed["recovered"]), (&sub["epoch"], &json!(true)), "same epoch: history is intact");
    assert_eq!(seqs(&messages_until(&mut ws, 12, Duration::from_secs(5)).await), vec![11, 12]);
}

#[tokio::test]
async fn two_nodes_in_one_room_exchange_messages_in_seq_order() {
    let redis = RedisServer::start().await;
    let (a, b) = tokio::join!(Node::start(&redis.url(), false), Node::start(&redis.url(), false));
    let (conv, tokens) = room(&a.api(KEY_A), "two nodes", &["alice", "bob"]).await;
    let mut alice = a.ws(&tokens[0]).await;
    let mut bob = b.ws(&tokens[1]).await;
    alice.subscribe(&conv, None).await;
    bob.subscribe(&conv, None).await;
    // Both write at once, without waiting for acks: the store interleaves them.
    for i in 0..15 {
        alice.send(json!({"type": "send", "conversation_id": conv, "text": format!("a{i}")})).await;
        bob.send(json!({"type": "send", "conversation_id": conv, "text": format!("b{i}")})).await;
    }
    for ws in [&mut alice, &mut bob] {
        let got = messages_until(ws, 30, Duration::from_secs(10)).await;
        assert_eq!(seqs(&got), (1..=30).collect::<Vec<_>>(), "every message once, in seq order");
        let texts: Vec<&str> = got.iter().filter_map(|m| m["text"].as_str()).collect();
        assert_eq!(texts.iter().filter(|t| t.starts_with('a')).count(), 15);
        assert_eq!(texts.iter().filter(|t| t.starts_with('b')).count(), 15);
    }
    // Ephemeral frames cross nodes too.
    bob.send(json!({"type": "typing", "conversation_id": conv})).await;
    loop {
        let f = next_within(&mut alice, Duration::from_secs(5)).await.expect("typing from the other node");
        if f["type"] == "typing" {
            assert_eq!(f["identity"], "bob");
            break;
        }
    }
}

#[tokio::test]
async fn concurrent_appends_from_two_nodes_never_share_a_seq() {
    let redis = RedisServer::start().await;
    let (a, b) = tokio::join!(Node::start(&redis.url(), false), Node::start(&redis.url(), false));
    let conv = a.api(KEY_A).conversation("race").await;
    let posts = (0..40).map(|i| {
        let api = if i % 2 == 0 { a.api(KEY_A) } else { b.api(KEY_A) };
        let conv = conv.clone();
        async move { api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": format!("{i}")})).await }
    });
    let mut got: Vec<u64> = futures_util::future::join_all(posts)
        .await
        .into_iter()
        .map(|(s, m)| {
            assert_eq!(s, 201, "{m}");
            m["seq"].as_u64().unwrap()
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, (1..=40).collect::<Vec<_>>());
}

#[tokio::test]
async fn concurrent_room_creation_ends_with_one_room() {
    use switchboard::model::{Address, AddressType};
    use switchboard::store::{Binding, ChannelStore, RedisStore};
    let redis = RedisServer::start().await;
    let mut config = common::test_config();
    config.store.backend = switchboard::config::Backend::Redis;
    config.redis.url = redis.url();
    // Two stores with their own connections: two nodes racing on the same inbound peer.
    let mut stores = Vec::new();
    for _ in 0..2 {
        let client = switchboard::store::redis::RedisClient::connect(&config.redis).await.unwrap();
        stores.push(Arc::new(RedisStore::new(client, &config)));
    }
    let account = Uuid::now_v7();
    let peer = Address { kind: AddressType::Tel, target: "+15550001111".into(), name: String::new() };
    let attempts = (0..20).map(|i| {
        let (store, peer) = (stores[i % 2].clone(), peer.clone());
        let mine = Binding { conversation_id: Uuid::now_v7(), participant_id: Uuid::now_v7() };
        async move { (mine, store.bind(account, &peer, mine).await.unwrap()) }
    });
    let results = futures_util::future::join_all(attempts).await;
    let winners: Vec<Binding> = results.iter().filter(|(_, existing)| existing.is_none()).map(|(b, _)| *b).collect();
    assert_eq!(winners.len(), 1, "exactly one creator wins");
    for (_, existing) in results.iter().filter(|(_, e)| e.is_some()) {
        assert_eq!(*existing, Some(winners[0]), "every loser is pointed at the winner's room");
    }
    assert_eq!(stores[1].binding(account, &peer).await.unwrap(), Some(winners[0]));
}

#[tokio::test]
async fn redis_outage_fails_writes_cleanly_and_subscribers_recover_the_gap() {
    let mut redis = RedisServer::start_durable().await;
    let node = Node::start(&redis.url(), false).await;
    let api = node.api(KEY_A);
    let (conv, tokens) = room(&api, "outage", &["watcher", "alice"]).await;
    let mut watcher = node.ws(&tokens[0]).await;
    watcher.subscribe(&conv, None).await;
    let mut alice = node.ws(&tokens[1]).await;
    alice.subscribe(&conv, None).await;

    // A writer that keeps posting through the outage, recording what was acknowledged.
    let acked: Arc<Mutex<BTreeMap<u64, Value>>> = Arc::default();
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (api, conv, acked, failures, stop) = (api.clone(), conv.clone(), acked.clone(), failures.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                i += 1;
                let (s, m) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": format!("w{i}")})).await;
                match s {
                    201 => {
                        acked.lock().unwrap().insert(m["seq"].as_u64().unwrap(), m["id"].clone());
                    }
                    503 => {
                        failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("unexpected status {other}: {m}"),
                }
            }
        })
    };
    let acked_count = || acked.lock().unwrap().len();
    wait_until(Duration::from_secs(10), "traffic before the outage", || async { acked_count() >= 20 }).await;

    redis.kill();
    let f = failures.clone();
    wait_until(Duration::from_secs(10), "a write to fail with 503", || {
        let f = f.clone();
        async move { f.load(std::sync::atomic::Ordering::SeqCst) > 0 }
    })
    .await;
    let (ready, _) = api.get("/readyz").await;
    assert_eq!(ready, 503, "/readyz reflects the outage");
    alice.send(json!({"type": "send", "conversation_id": conv, "text": "lost?", "client_id": "x1"})).await;
    let reply = loop {
        let f = next_within(&mut alice, Duration::from_secs(10)).await.expect("a reply to the send");
        if matches!(f["type"].as_str(), Some("error" | "ack")) {
            break f;
        }
    };
    assert_eq!((&reply["type"], &reply["code"]), (&json!("error"), &json!("unavailable")), "{reply}");
    let before_restart = acked_count();

    redis.restart().await;
    wait_until(Duration::from_secs(20), "writes to succeed again", || async { acked_count() >= before_restart + 20 }).await;
    stop.cancel();
    writer.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    let h = history(&api, &conv).await;
    let stored: BTreeMap<u64, Value> = h.iter().map(|m| (m["seq"].as_u64().unwrap(), m["id"].clone())).collect();
    let last = *stored.keys().last().unwrap();
    assert_eq!(stored.keys().copied().collect::<Vec<_>>(), (1..=last).collect::<Vec<_>>(), "history has no holes");
    for (seq, id) in &acked {
        assert_eq!(stored.get(seq), Some(id), "acked message seq {seq} survived the Redis restart");
    }
    let seen = messages_until(&mut watcher, last, Duration::from_secs(20)).await;
    assert_eq!(seqs(&seen), (1..=last).collect::<Vec<_>>(), "the subscriber got every message once, in order");
    let (ready, _) = api.get("/readyz").await;
    assert_eq!(ready, 200);
}

#[tokio::test]
async fn a_plain_redis_subscriber_receives_event_envelopes() {
    let redis = RedisServer::start().await;
    let node = Node::start(&redis.url(), false).await;
    let tenant = tenant_id("a");
    let channel = format!("switchboard:events:{tenant}");
    let (mut sink, mut stream) = redis::Client::open(redis.url()).unwrap().get_async_pubsub().await.unwrap().split();
    sink.subscribe(&channel).await.unwrap();

    let api = node.api(KEY_A);
    let conv = api.conversation("events").await;
    api.webchat(&conv, "eve").await;
    let (s, _) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": "hello"})).await;
    assert_eq!(s, 201);
    let (s, _) = api.put(&format!("/v1.0/conversations/{conv}"), json!({"name": "renamed"})).await;
    assert_eq!(s, 200);
    let (s, _) = api.delete(&format!("/v1.0/conversations/{conv}")).await;
    assert!(s == 200 || s == 204, "delete: {s}");

    let mut events: Vec<Value> = Vec::new();
    while events.last().map(|e| e["type"].clone()) != Some(json!("conversation.deleted")) {
        let m = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("event in 5s").expect("link open");
        events.push(serde_json::from_slice(m.get_payload_bytes()).expect("envelope is JSON"));
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let expected = ["conversation.created", "participant.added", "message.created", "conversation.updated", "conversation.deleted"];
    let mut rest = kinds.iter();
    for k in expected {
        assert!(rest.any(|x| *x == k), "`{k}` missing or out of order in {kinds:?}");
    }
    for e in &events {
        assert!(Uuid::parse_str(e["id"].as_str().unwrap_or("")).is_ok(), "{e}");
        assert_eq!(e["tenant_id"], json!(tenant));
        assert!(e["tm_create"].is_string() && e["data"].is_object(), "{e}");
    }
    assert_eq!(events[0]["data"]["id"], json!(conv));
    // The same envelopes, in the same order, in the tenant's stream.
    let mut c = redis.connection().await;
    let entries: Vec<(String, Vec<(String, String)>)> =
        redis::cmd("XRANGE").arg(format!("switchboard:events:{{{tenant}}}:stream")).arg("-").arg("+").query_async(&mut c).await.unwrap();
    let ids: Vec<Value> = entries.iter().map(|(_, f)| serde_json::from_str::<Value>(&f[0].1).unwrap()["id"].clone()).collect();
    assert_eq!(ids, events.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_node_refuses_to_start_without_redis() {
    let port = common::redis::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::test_config();
    c.server.listen = format!("127.0.0.1:{}", common::redis::free_port());
    c.store.backend = switchboard::config::Backend::Redis;
    c.redis.url = format!("redis://127.0.0.1:{port}");
    c.redis.command_timeout_ms = 300;
    let path = dir.path().join("config.toml");
    std::fs::write(&path, toml::to_string(&c).unwrap()).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), out).await.expect("exits promptly").unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach Redis"), "{err}");
}

#[tokio::test]
async fn core_flows_work_on_a_redis_cluster() {
    let cluster = RedisCluster::start().await;
    let (a, b) = tokio::join!(Node::start(&cluster.url(), true), Node::start(&cluster.url(), true));
    let api = a.api(KEY_B);

    // CRUD
    let conv = api.conversation("on a cluster").await;
    let (s, c) = b.api(KEY_B).get(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!((s, &c["name"]), (200, &json!("on a cluster")), "visible from the other node");
    let (s, c) = api.put(&format!("/v1.0/conversations/{conv}"), json!({"name": "renamed", "metadata": {"k": 1}})).await;
    assert_eq!((s, &c["name"], &c["metadata"]["k"]), (200, &json!("renamed"), &json!(1)));
    let (s, _) = a.api(KEY_A).get(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!(s, 404, "other tenants do not see it");

    // Pagination: newest first, cursor pages with no repeats.
    let mut created = vec![conv.clone()];
    for i in 0..4 {
        created.push(api.conversation(&format!("p{i}")).await);
    }
    let (mut listed, mut token) = (Vec::new(), None::<String>);
    loop {
        let q = token.as_ref().map_or(String::new(), |t| format!("&page_token={t}"));
        let (s, page) = api.get(&format!("/v1.0/conversations?page_size=2{q}")).await;
        assert_eq!(s, 200, "{page}");
        listed.extend(page["result"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(listed, created);

    // Messages, duplicate client_id, history paging.
    let path = format!("/v1.0/conversations/{conv}/messages");
    for i in 1..=5 {
        let (s, m) = api.post(&path, json!({"text": format!("m{i}"), "client_id": format!("k{i}")})).await;
        assert_eq!((s, m["seq"].as_u64()), (201, Some(i)));
    }
    let (s, dup) = api.post(&path, json!({"text": "retry", "client_id": "k2"})).await;
    assert_eq!((s, &dup["seq"], &dup["text"]), (200, &json!(2), &json!("m2")));
    let (_, page) = api.get(&format!("{path}?before=5&page_size=2")).await;
    assert_eq!(seqs(page["result"].as_array().unwrap()), vec![3, 4]);
    assert_eq!(page["has_more"], json!(true));
    let (_, page) = api.get(&format!("{path}?after=3&page_size=5")).await;
    assert_eq!(seqs(page["result"].as_array().unwrap()), vec![4, 5]);

    // WebSocket: resume with since, then both ways across nodes (sharded pub/sub).
    api.webchat(&conv, "ann").await;
    api.webchat(&conv, "ben").await;
    let mut ann = a.ws(&api.token("ann", &[&conv]).await).await;
    let mut ben = b.ws(&api.token("ben", &[&conv]).await).await;
    let sub = ann.subscribe(&conv, Some(3)).await;
    assert_eq!(sub["recovered"], json!(true));
    assert_eq!(seqs(&messages_until(&mut ann, 5, Duration::from_secs(5)).await), vec![4, 5]);
    ben.subscribe(&conv, Some(5)).await;
    ben.send(json!({"type": "send", "conversation_id": conv, "text": "from b", "client_id": "b1"})).await;
    ann.send(json!({"type": "send", "conversation_id": conv, "text": "from a", "client_id": "a1"})).await;
    for ws in [&mut ann, &mut ben] {
        let got = messages_until(ws, 7, Duration::from_secs(10)).await;
        assert_eq!(seqs(&got), vec![6, 7]);
    }
    ben.send(json!({"type": "send", "conversation_id": conv, "text": "from b again", "client_id": "b1"})).await;
    let ack = ben.next_of("ack").await;
    assert_eq!((&ack["duplicate"], ack["seq"].as_u64().map(|s| s == 6 || s == 7)), (&json!(true), Some(true)));

    // Events on the sharded channel, then delete.
    let (tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
    let client = redis::cluster::ClusterClient::builder(cluster.nodes.iter().map(|n| n.url()))
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(tx)
        .build()
        .unwrap();
    let mut events = client.get_async_connection().await.unwrap();
    events.ssubscribe(format!("switchboard:events:{}", tenant_id("b"))).await.unwrap();
    let (s, _) = api.delete(&format!("/v1.0/conversations/{conv}")).await;
    assert!(s == 200 || s == 204);
    let deleted = loop {
        let p = tokio::time::timeout(Duration::from_secs(5), pushes.recv()).await.expect("event in 5s").expect("open");
        if let Some(m) = redis::Msg::from_push_info(p) {
            let e: Value = serde_json::from_slice(m.get_payload_bytes()).unwrap();
            if e["type"] == "conversation.deleted" {
                break e;
            }
        }
    };
    assert_eq!(deleted["data"]["id"], json!(conv));
    let (s, _) = b.api(KEY_B).get(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!(s, 404);
}
