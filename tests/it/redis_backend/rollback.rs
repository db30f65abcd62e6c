//! A Redis that comes back with less than it acknowledged — restarted from an older snapshot,
//! or a failover to a replica that was behind — must not make the hub hand out a seq twice
//! under one epoch: a client that saw seq 2 and 3 would otherwise take different messages for
//! the ones it has. The room moves to a new epoch above the highest seq anybody was told,
//! whether the node that saw the lost writes is still up or was restarted too (then the
//! resuming client's own `since`/`epoch` is the witness, or — when someone posts before any
//! client resumes — the Redis `run_id` the room last wrote under, which a restart changes).

use super::*;

/// Posts `text`, retrying while the node's Redis link comes back (a refused write is not
/// stored); returns the created message.
async fn post(api: &common::Api, conv: &str, text: &str) -> Value {
    let path = format!("/v1.0/conversations/{conv}/messages");
    let mut last = Value::Null;
    for _ in 0..100 {
        let (s, m) = api.post(&path, json!({"text": text})).await;
        if s == 201 {
            return m;
        }
        last = m;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{text} not posted: {last}");
}

/// Resumes `conv` claiming to have seen up to `since` under `epoch`; the `subscribed` frame.
async fn resume(ws: &mut common::Ws, conv: &str, since: u64, epoch: &Value) -> Value {
    ws.send(json!({"type": "subscribe", "conversation_id": conv, "since": since, "epoch": epoch})).await;
    ws.next_of("subscribed").await
}

/// A room where m1 is in `snapshot` and m2, m3 (acknowledged, seen live) came after it.
/// Returns the room, alice's token, the live subscriber, the epoch it was told and the snapshot.
async fn three_messages_one_snapshot(redis: &RedisServer, node: &Node) -> (String, String, common::Ws, Value, Vec<u8>) {
    let api = node.api(KEY_A);
    let (conv, tokens) = room(&api, "rollback", &["alice"]).await;
    let mut live = node.ws(&tokens[0]).await;
    let epoch = live.subscribe(&conv, None).await["epoch"].clone();
    assert_eq!(post(&api, &conv, "m1").await["seq"], 1);
    let snapshot = redis.snapshot().await;
    assert_eq!(post(&api, &conv, "m2").await["seq"], 2);
    assert_eq!(post(&api, &conv, "m3").await["seq"], 3);
    assert_eq!(seqs(&messages_until(&mut live, 3, Duration::from_secs(5)).await), vec![1, 2, 3]);
    (conv, tokens[0].clone(), live, epoch, snapshot)
}

#[tokio::test]
async fn redis_restored_from_an_older_snapshot_never_makes_the_node_reuse_a_seq() {
    let mut redis = RedisServer::start().await;
    let node = Node::start(&redis.url(), false).await;
    let api = node.api(KEY_A);
    let (conv, token, mut live, epoch, snapshot) = three_messages_one_snapshot(&redis, &node).await;

    redis.restart_from(&snapshot).await; // m2 and m3 are gone from Redis
    let m4 = post(&api, &conv, "m4").await;
    let m5 = post(&api, &conv, "m5").await;
    let (s4, s5) = (m4["seq"].as_u64().unwrap(), m5["seq"].as_u64().unwrap());
    assert!(s4 > 3 && s5 == s4 + 1, "seqs 2 and 3 were handed out already; got {s4}, {s5}");

    let got = messages_until(&mut live, s5, Duration::from_secs(10)).await;
    let texts: Vec<&str> = got.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!((seqs(&got), texts), (vec![s4, s5], vec!["m4", "m5"]), "the live subscriber gets both, above 3");

    let mut again = node.ws(&token).await;
    let resumed = resume(&mut again, &conv, 3, &epoch).await;
    assert_eq!(resumed["recovered"], false, "history 1..3 of that epoch is gone: reload, not replay");
    assert_ne!(resumed["epoch"], epoch, "the room moved to a new epoch");
    assert_eq!(resumed["seq"].as_u64(), Some(s5));
}

#[tokio::test]
async fn a_restarted_node_learns_from_a_resuming_client_that_history_went_back() {
    let mut redis = RedisServer::start().await;
    let mut node = Node::start(&redis.url(), false).await;
    let (conv, token, live, epoch, snapshot) = three_messages_one_snapshot(&redis, &node).await;
    drop(live);

    // Both go down; the node comes back with no memory of seq 3.
    node.kill();
    redis.restart_from(&snapshot).await;
    node.restart().await;

    let mut ws = node.ws(&token).await;
    let resumed = resume(&mut ws, &conv, 3, &epoch).await;
    assert_eq!(resumed["recovered"], false, "the client saw 3 under this epoch; Redis has 1");
    assert_ne!(resumed["epoch"], epoch, "the room moved to a new epoch");
    assert_eq!(resumed["seq"].as_u64(), Some(3), "continuing above what the client was told");

    let m4 = post(&node.api(KEY_A), &conv, "m4").await;
    assert_eq!(m4["seq"].as_u64(), Some(4), "no seq reused");
    let got = messages_until(&mut ws, 4, Duration::from_secs(5)).await;
    assert_eq!(got.iter().map(|m| m["text"].as_str().unwrap()).collect::<Vec<_>>(), vec!["m4"]);
}

#[tokio::test]
async fn a_restarted_node_posting_before_anyone_resumes_never_reuses_a_seq_under_the_old_epoch() {
    let mut redis = RedisServer::start().await;
    let mut node = Node::start(&redis.url(), false).await;
    let (conv, token, live, epoch, snapshot) = three_messages_one_snapshot(&redis, &node).await;
    drop(live);

    // Both go down; the node comes back with no memory of seq 3, and m4 comes first.
    node.kill();
    redis.restart_from(&snapshot).await;
    node.restart().await;
    let m4 = post(&node.api(KEY_A), &conv, "m4").await;
    let s4 = m4["seq"].as_u64().unwrap();

    // A client that saw m2 (seq 2) under the old epoch must not take m4 for it.
    for since in [2, 3] {
        let mut ws = node.ws(&token).await;
        let resumed = resume(&mut ws, &conv, since, &epoch).await;
        assert_eq!(resumed["recovered"], false, "since={since}: seq {s4} is m4 now, not what the client saw");
        assert_ne!(resumed["epoch"], epoch, "m4 was numbered under a new epoch");
    }
    let mut fresh = node.ws(&token).await;
    let now = fresh.subscribe(&conv, None).await;
    assert_ne!(now["epoch"], epoch);
    let (_, page) = node.api(KEY_A).get(&format!("/v1.0/conversations/{conv}/messages")).await;
    let texts: Vec<&str> = page["result"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"m4") && !texts.contains(&"m2"), "{page}");
}

#[tokio::test]
async fn with_trust_restarts_a_durable_redis_restart_keeps_the_epoch() {
    let mut redis = RedisServer::start_durable().await;
    let node = Node::start_with(&redis.url(), false, |c| c.redis.trust_restarts = true).await;
    let api = node.api(KEY_A);
    let (conv, tokens) = room(&api, "trusted", &["alice"]).await;
    let mut ws = node.ws(&tokens[0]).await;
    let epoch = ws.subscribe(&conv, None).await["epoch"].clone();
    assert_eq!(post(&api, &conv, "m1").await["seq"], 1);

    redis.restart().await; // appendfsync always: nothing acknowledged is lost
    assert_eq!(post(&api, &conv, "m2").await["seq"], 2);
    let mut again = node.ws(&tokens[0]).await;
    let resumed = resume(&mut again, &conv, 1, &epoch).await;
    assert_eq!((&resumed["recovered"], &resumed["epoch"]), (&json!(true), &epoch), "{resumed}");
}
