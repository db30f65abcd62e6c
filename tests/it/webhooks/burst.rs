//! A burst of events larger than any in-process channel between the write and the webhook
//! outbox ever held (the dispatcher used to read a 4096-slot broadcast and skip what it fell
//! behind on): every event is delivered, because each one is written into the outbox by the
//! write itself.

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
