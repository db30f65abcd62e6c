//! The Redis backend end to end: real `redis-server` processes (single and 3-master cluster)
//! and real `switchboard` processes, killed and restarted for the fault scenarios.
//!
//! Every wait is on a condition with a deadline; nothing sleeps and hopes. Node-level
//! scenarios are here; `cluster` runs the core flows on a 3-master cluster, `rollback` a Redis
//! that lost acknowledged writes (restored from an older snapshot), `store` checks
//! the store's own guarantees (race-free creation, trimming, delivery updates) directly and
//! `tls` runs a node against a TLS-only Redis port.

mod cluster;
mod failover;
mod rollback;
mod store;
mod tls;

use crate::common;
use crate::common::KEY_A;
use crate::common::redis::{
    Node, RedisServer, history, messages_until, next_within, room, seqs, tenant_id, wait_until,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn acked_messages_survive_a_node_sigkill_and_seq_continues() {
    let redis = RedisServer::start().await;
    let mut node = Node::start(&redis.url(), false).await;
    let api = node.api(KEY_A);
    let (conv, tokens) = room(&api, "persist", &["alice"]).await;
    let mut acked = BTreeMap::new();
    for i in 1..=10 {
        let (s, m) = api
            .post(
                &format!("/v1.0/conversations/{conv}/messages"),
                json!({"text": format!("m{i}"), "client_id": format!("c{i}")}),
            )
            .await;
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
    let (s, dup) =
        api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": "again", "client_id": "c3"})).await;
    assert_eq!((s, &dup["seq"], &dup["id"]), (200, &json!(3), &acked[&3]), "retry keys survive the restart");
    let (s, next) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": "after"})).await;
    assert_eq!((s, next["seq"].as_u64()), (201, Some(12)));
    let mut ws = node.ws(&tokens[0]).await;
    let resumed = ws.subscribe(&conv, Some(10)).await;
    assert_eq!(
        (&resumed["epoch"], &resumed["recovered"]),
        (&sub["epoch"], &json!(true)),
        "same epoch: history is intact"
    );
    assert_eq!(seqs(&messages_until(&mut ws, 12, Duration::from_secs(5)).await), vec![11, 12]);
}

#[tokio::test]
async fn two_nodes_in_one_room_exchange_messages_in_seq_order() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let (a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));
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
            // alice is an end user: she learns who types by participant, never by identity.
            assert!(f["participant_id"].is_string() && f.get("identity").is_none(), "{f}");
            break;
        }
    }
}

#[tokio::test]
async fn concurrent_appends_from_two_nodes_never_share_a_seq() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let (a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));
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
async fn redis_outage_fails_writes_cleanly_and_subscribers_recover_the_gap() {
    let mut redis = RedisServer::start_durable().await;
    let node = Node::start(&redis.url(), false).await;
    let api = node.api(KEY_A);
    let (conv, tokens) = room(&api, "outage", &["watcher", "alice"]).await;
    let mut watcher = node.ws(&tokens[0]).await;
    let epoch = watcher.subscribe(&conv, None).await["epoch"].clone();
    let mut alice = node.ws(&tokens[1]).await;
    alice.subscribe(&conv, None).await;

    // A writer that keeps posting through the outage, recording what was acknowledged.
    let acked: Arc<Mutex<BTreeMap<u64, Value>>> = Arc::default();
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (api, conv, acked, failures, stop) =
            (api.clone(), conv.clone(), acked.clone(), failures.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                i += 1;
                let (s, m) =
                    api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": format!("w{i}")})).await;
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
    wait_until(Duration::from_secs(20), "writes to succeed again", || async { acked_count() >= before_restart + 20 })
        .await;
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
    // Redis restarted: nobody can prove it lost nothing (`redis.trust_restarts` is off), so the
    // room went on under a new epoch, and a client resuming with the old one reloads.
    let mut back = node.ws(&tokens[1]).await;
    back.send(json!({"type": "subscribe", "conversation_id": conv, "since": last, "epoch": epoch})).await;
    let resumed = back.next_of("subscribed").await;
    assert_eq!(resumed["recovered"], false, "{resumed}");
    assert_ne!(resumed["epoch"], epoch, "a new epoch after the restart");
    assert_eq!(resumed["seq"].as_u64(), Some(last));
}

#[tokio::test]
async fn a_lost_pubsub_link_is_repaired_and_subscribers_get_what_they_missed() {
    let redis = RedisServer::start().await;
    let node = Node::start(&redis.url(), false).await;
    let api = node.api(KEY_A);
    let (conv, tokens) = room(&api, "link loss", &["watcher"]).await;
    let mut watcher = node.ws(&tokens[0]).await;
    watcher.subscribe(&conv, None).await;
    let mut c = redis.connection().await;
    let mut killed = 0;
    for round in 0..3u64 {
        // Drop the node's subscriber connection only: commands keep working, so these posts are
        // acked while nobody on the node listens to the room channel.
        let n: u64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut c).await.unwrap();
        killed += n;
        for i in 0..3 {
            let (s, m) = api
                .post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": format!("{round}.{i}")}))
                .await;
            assert_eq!(s, 201, "{m}");
        }
        let got = messages_until(&mut watcher, round * 3 + 3, Duration::from_secs(10)).await;
        assert_eq!(seqs(&got), (round * 3 + 1..=round * 3 + 3).collect::<Vec<_>>());
    }
    assert!(killed >= 1, "the node had a pub/sub connection to kill");
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
        let m =
            tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("event in 5s").expect("link open");
        events.push(serde_json::from_slice(m.get_payload_bytes()).expect("envelope is JSON"));
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let expected = [
        "conversation.created",
        "participant.added",
        "message.created",
        "conversation.updated",
        "conversation.deleted",
    ];
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
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("switchboard:events:{{{tenant}}}:stream"))
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    let ids: Vec<Value> =
        entries.iter().map(|(_, f)| serde_json::from_str::<Value>(&f[0].1).unwrap()["id"].clone()).collect();
    assert_eq!(ids, events.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_node_refuses_to_start_without_redis() {
    let url = format!("redis://127.0.0.1:{}", common::redis::free_port());
    let err = common::redis::serve_refused(&url, |c| c.redis.command_timeout_ms = 300).await;
    assert!(err.contains("cannot reach Redis"), "{err}");
}

#[tokio::test]
async fn a_send_to_a_stalled_redis_is_answered_within_the_command_timeout() {
    let mut cfg = common::test_config();
    cfg.redis.command_timeout_ms = 500;
    let srv = common::TestServer::start_on(common::Backend::Redis, cfg).await;
    let api = srv.api(KEY_A);
    let c = api.conversation("stalled").await;
    api.webchat(&c, "alice").await;
    let mut ws = srv.ws(&api.token("alice", &[&c]).await).await;
    ws.subscribe(&c, None).await;
    let redis = srv.redis.as_ref().expect("a redis-backed server");
    redis.pause();
    // What the chat page does: a few `typing` frames while composing, then the `send`.
    let start = std::time::Instant::now();
    for _ in 0..3 {
        ws.send(json!({"type": "typing", "conversation_id": c})).await;
    }
    ws.send(json!({"type": "send", "conversation_id": c, "text": "anyone?", "client_id": "s1"})).await;
    let answer = loop {
        let f = ws.next().await;
        if f["client_id"] == "s1" {
            break f;
        }
    };
    let took = start.elapsed();
    redis.resume();
    assert_eq!((answer["type"].as_str(), answer["code"].as_str()), (Some("error"), Some("unavailable")), "{answer}");
    // 500 ms configured: a generous margin, still well below one timeout per frame in a row.
    assert!(took < Duration::from_millis(1200), "`unavailable` after {took:?}");
    srv.stop().await;
}
