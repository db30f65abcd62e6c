//! Redis Cluster failover under steady traffic: 3 masters with a replica each, one master
//! SIGKILLed while every room keeps posting.
//!
//! What a user must see: while the dead master's slots have no owner, sends that touch them
//! answer 503 `unavailable` (never a 500, never a hang); once its replica is promoted, sends
//! succeed again and live delivery resumes on the new master's sharded pub/sub. Nothing acked
//! is lost beyond what asynchronous replication allows, and where it was, a resume with the
//! old epoch answers `recovered: false` rather than replaying different messages under old seqs.

use crate::common::KEY_A;
use crate::common::redis::{Node, RedisCluster, history, next_within, room, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const ROOMS: usize = 8;

/// `INFO replication` of `url`.
async fn replication(url: String) -> String {
    let Ok(client) = redis::Client::open(url) else { return String::new() };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else { return String::new() };
    redis::cmd("INFO").arg("replication").query_async(&mut c).await.unwrap_or_default()
}

/// `CLUSTER NODES` as seen by `url` (for failure messages).
async fn cluster_nodes(url: String) -> String {
    let Ok(client) = redis::Client::open(url) else { return String::new() };
    let Ok(mut c) = client.get_multiplexed_async_connection().await else { return String::new() };
    redis::cmd("CLUSTER").arg("NODES").query_async(&mut c).await.unwrap_or_default()
}

/// One post per room; `(room index, HTTP status, body)` for each.
async fn post_round(api: &crate::common::Api, rooms: &[String], round: usize) -> Vec<(usize, u16, Value)> {
    let mut out = Vec::new();
    for (i, conv) in rooms.iter().enumerate() {
        let text = format!("r{round}-{i}");
        let (s, v) = api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": text})).await;
        out.push((i, s, v));
    }
    out
}

#[tokio::test]
async fn a_master_killed_under_traffic_fails_over_without_losing_or_reusing_acked_messages() {
    let mut cluster = RedisCluster::start_with_replicas(1).await;
    // The victim: a master whose replica has finished its sync, so the failover can happen.
    let masters: Vec<String> = cluster.nodes.iter().map(|n| n.url()).collect();
    let synced = |url: String| async move {
        let info = replication(url).await;
        info.contains("role:master") && info.contains("state=online")
    };
    wait_until(Duration::from_secs(20), "a master with an online replica", || {
        let masters = masters.clone();
        async move {
            for m in masters {
                if synced(m).await {
                    return true;
                }
            }
            false
        }
    })
    .await;
    let mut victim = None;
    for (i, url) in masters.iter().enumerate() {
        if synced(url.clone()).await {
            victim = Some(i);
            break;
        }
    }
    let victim = victim.expect("a master with an online replica");
    let node = Node::start(&cluster.url(), true).await;
    let api = node.api(KEY_A);

    let mut rooms = Vec::new();
    let mut live = Vec::new();
    let mut epochs = Vec::new();
    for i in 0..ROOMS {
        let (conv, tokens) = room(&api, &format!("failover {i}"), &["watcher"]).await;
        let mut ws = node.ws(&tokens[0]).await;
        epochs.push(ws.subscribe(&conv, None).await["epoch"].clone());
        rooms.push(conv);
        live.push(ws);
    }

    // Steady traffic: rounds of one post per room; the master dies after round 3.
    let mut acked: BTreeMap<usize, Vec<(u64, String)>> = BTreeMap::new();
    let mut refused = 0;
    let mut killed_at = None;
    let mut recovered_at = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    for round in 0.. {
        if round == 3 {
            cluster.nodes[victim].kill();
            killed_at = Some(Instant::now());
        }
        let results = post_round(&api, &rooms, round).await;
        let all_ok = results.iter().all(|(_, s, _)| *s == 201);
        for (i, s, v) in results {
            match s {
                201 => acked.entry(i).or_default().push((v["seq"].as_u64().expect("seq"), format!("r{round}-{i}"))),
                503 => {
                    assert_eq!(v["error"]["code"], "unavailable", "an outage answers `unavailable`: {v}");
                    refused += 1;
                }
                _ => panic!("during a failover a send answers 201 or 503, got {s}: {v}\n{}", node.log()),
            }
        }
        if killed_at.is_some() && refused > 0 && all_ok && recovered_at.is_none() {
            recovered_at = Some(Instant::now());
        }
        // Three clean rounds after the recovery, then stop.
        if recovered_at.is_some_and(|t| t.elapsed() > Duration::from_millis(500)) && all_ok {
            break;
        }
        if Instant::now() > deadline {
            let other = cluster.nodes[(victim + 1) % cluster.nodes.len()].url();
            panic!("sends did not recover within 60 s of the kill\n{}\n{}", cluster_nodes(other).await, node.log());
        }
        if killed_at.is_some() && recovered_at.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(refused > 0, "killing a master refused no send: the test did not exercise the outage");
    let outage = recovered_at.unwrap() - killed_at.unwrap();
    eprintln!("failover: sends refused for {:.1} s ({refused} refusals)", outage.as_secs_f64());

    // Every room: resume with the epoch and the highest seq this client was told. Either the
    // room's history still holds every acked message, or the epoch moved on.
    let witness = node.api(KEY_A);
    for (i, conv) in rooms.iter().enumerate() {
        let mine = &acked[&i];
        let top = mine.iter().map(|(s, _)| *s).max().unwrap();
        let token = witness.token("watcher", &[conv]).await;
        let mut ws = node.ws(&token).await;
        ws.send(json!({"type": "subscribe", "conversation_id": conv, "since": top, "epoch": epochs[i]})).await;
        let resumed = ws.next_of("subscribed").await;
        let stored = history(&witness, conv).await;
        let by_seq: BTreeMap<u64, String> =
            stored.iter().map(|m| (m["seq"].as_u64().unwrap(), m["text"].as_str().unwrap_or("").to_string())).collect();
        assert_eq!(by_seq.len(), stored.len(), "room {i}: no seq appears twice in history");
        if resumed["recovered"] == true {
            for (seq, text) in mine {
                assert_eq!(by_seq.get(seq), Some(text), "room {i}: acked seq {seq} is in history as sent");
            }
        } else {
            assert_ne!(resumed["epoch"], epochs[i], "room {i}: history was lost, so the epoch moved on");
        }

        // Live delivery works on the new topology: a post reaches a fresh subscriber.
        let (s, m) = witness.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": "after"})).await;
        assert_eq!(s, 201, "{m}");
        let seq = m["seq"].as_u64().unwrap();
        let mut got = false;
        let until = Instant::now() + Duration::from_secs(10);
        while !got && Instant::now() < until {
            match next_within(&mut ws, Duration::from_secs(10)).await {
                Some(f) if f["type"] == "message" && f["message"]["seq"] == seq => got = true,
                Some(_) => {}
                None => break,
            }
        }
        assert!(got, "room {i}: a message posted after the failover is delivered live\n{}", node.log());
    }
    // The old subscribers are either still live or were closed with a documented code; either
    // way they are done with.
    drop(live);
    wait_until(Duration::from_secs(5), "the node still ready", || {
        let url = node.url("/readyz");
        async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
}
