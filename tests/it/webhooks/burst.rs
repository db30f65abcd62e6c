//! Webhooks under concurrent writes: deliveries keep seq order per conversation while early
//! attempts fail and retry, and a burst of events larger than any in-process channel between
//! the write and the webhook outbox ever held (the dispatcher used to read a 4096-slot broadcast
//! and skip what it fell behind on) is delivered in full, because each event is written into the
//! outbox by the write itself.

use super::*;
use common::redis::wait_until;

#[tokio::test]
async fn a_burst_beyond_the_old_broadcast_capacity_delivers_every_event() {
    let mut c = config();
    // Delivery records beyond `deliveries_kept` are evicted even while pending (a separate
    // limit from the one under test here).
    c.webhooks.deliveries_kept = 10_000;
    let srv = TestServer::start_with(c).await;
    let api = srv.api(KEY_A);
    let stub = ok_stub().await;
    let (_, secret) = webhook(&api, json!({"url": stub.url, "events": ["message.created"]})).await;
    const ROOMS: usize = 8;
    const PER_ROOM: usize = 560; // 4480 events in all, beyond the old 4096
    let mut rooms = Vec::new();
    for i in 0..ROOMS {
        rooms.push(api.conversation(&format!("burst {i}")).await);
    }
    let writers = rooms.iter().map(|c| {
        let (api, c) = (api.clone(), c.clone());
        tokio::spawn(async move {
            for i in 0..PER_ROOM {
                let (s, m) =
                    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": format!("{i}")})).await;
                assert_eq!(s, 201, "{m}");
            }
        })
    });
    for w in futures_util::future::join_all(writers).await {
        w.unwrap();
    }
    let (mut seen, mut checked) = (std::collections::HashMap::<String, Vec<u64>>::new(), 0);
    wait_until(Duration::from_secs(60), "a webhook for every message of the burst", || {
        let reqs = stub.requests();
        for r in &reqs[checked..] {
            let e = check(r, &secret);
            seen.entry(e["conversation_id"].as_str().unwrap().into())
                .or_default()
                .push(e["data"]["seq"].as_u64().unwrap());
        }
        checked = reqs.len();
        let done = seen.values().map(Vec::len).sum::<usize>() >= ROOMS * PER_ROOM;
        async move { done }
    })
    .await;
    for c in &rooms {
        assert_eq!(seen[c], (1..=PER_ROOM as u64).collect::<Vec<_>>(), "each once, in seq order: {c}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn deliveries_keep_seq_order_per_conversation_under_concurrent_posts() {
    let srv = TestServer::start_with(config()).await;
    let api = srv.api(KEY_A);
    let stub = ok_stub().await;
    let (_, secret) = webhook(&api, json!({"url": stub.url, "events": ["message.created"]})).await;
    // Early attempts fail, so lanes have to hold later events back while they retry.
    stub.script((0..6).map(|_| Answer::status(500, "busy")));
    let mut published = srv.state.broker.events();
    let convs = [api.conversation("one").await, api.conversation("two").await];
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (api, convs) = (api.clone(), convs.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let c = &convs[(w + i) % 2];
                let (s, _) =
                    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": format!("{w}-{i}")})).await;
                assert_eq!(s, 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut order: Vec<(String, String)> = Vec::new();
    while order.len() < 40 {
        let e = tokio::time::timeout(Duration::from_secs(5), published.recv()).await.unwrap().unwrap();
        if e.kind == switchboard::wire::EventKind::MessageCreated {
            order.push((e.conversation_id.unwrap().to_string(), e.id.to_string()));
        }
    }
    // Every event delivered (2xx) once, in each conversation in seq order (the order the
    // appends wrote them into the outbox).
    let delivered = eventually(|| async {
        let ok: Vec<Value> =
            stub.requests().iter().enumerate().filter(|(i, _)| *i >= 6).map(|(_, r)| check(r, &secret)).collect();
        (ok.len() >= 40).then_some(ok)
    })
    .await;
    for c in &convs {
        let mut want: Vec<&str> = order.iter().filter(|(cc, _)| cc == c).map(|(_, id)| id.as_str()).collect();
        let mut got: Vec<&str> = delivered
            .iter()
            .filter(|e| e["conversation_id"] == c.as_str())
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        let seqs: Vec<u64> = delivered
            .iter()
            .filter(|e| e["conversation_id"] == c.as_str())
            .map(|e| e["data"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "conversation {c}");
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "the published events, each once");
    }
    srv.stop().await;
}
