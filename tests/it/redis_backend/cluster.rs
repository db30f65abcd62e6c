//! The core REST and WebSocket flows against a locally started 3-master Redis Cluster, with
//! two nodes: CRUD, pagination, history paging, duplicate `client_id`, resume with `since`,
//! cross-node delivery over sharded pub/sub, and events on the sharded events channel.

use crate::common::redis::{Node, RedisCluster, messages_until, seqs, tenant_id};
use crate::common::{KEY_A, KEY_B};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn core_flows_work_on_a_redis_cluster() {
    let cluster = RedisCluster::start().await;
    let url = cluster.url();
    let (a, b) = tokio::join!(Node::start(&url, true), Node::start(&url, true));
    let api = a.api(KEY_B);

    // CRUD
    let conv = api.conversation("on a cluster").await;
    let (s, c) = b.api(KEY_B).get(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!((s, &c["name"]), (200, &json!("on a cluster")), "visible from the other node");
    let (s, c) =
        api.put(&format!("/v1.0/conversations/{conv}"), json!({"name": "renamed", "metadata": {"k": 1}})).await;
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
