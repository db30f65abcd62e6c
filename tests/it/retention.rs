//! Retention (`retention_days` of a tenant): old messages leave REST history and resumes after
//! a background sweep, newer ones and the room stay with their seqs, and a tenant without a
//! retention keeps everything. Every scenario runs on both backends.

use crate::common::stub::eventually;
use crate::common::{Api, Backend, KEY_A, KEY_B, TestServer, on_every_backend, test_config};
use serde_json::json;
use std::time::Duration;

/// Tenant `a` keeps messages this long; the sweep runs every second.
const KEEP_SECS: f64 = 8.0;

async fn history(api: &Api, c: &str) -> Vec<(String, u64)> {
    let (s, v) = api.get(&format!("/v1.0/conversations/{c}/messages")).await;
    assert_eq!(s, 200, "{v}");
    v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["text"].as_str().unwrap().into(), m["seq"].as_u64().unwrap()))
        .collect()
}

async fn say(api: &Api, c: &str, text: &str) -> u64 {
    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": text})).await;
    assert_eq!(s, 201, "{m}");
    m["seq"].as_u64().unwrap()
}

#[tokio::test]
async fn a_sweep_removes_old_messages_and_keeps_newer_ones_the_room_and_other_tenants() {
    on_every_backend(sweep_on).await;
}

async fn sweep_on(backend: Backend) {
    let mut config = test_config();
    config.tenants[0].retention_days = Some(KEEP_SECS / 86_400.0);
    config.retention.sweep_secs = 1;
    // Small steps, so the sweep has to repeat them within a room.
    config.retention.batch = 2;
    let srv = TestServer::start_on(backend, config).await;
    let (a, b) = (srv.api(KEY_A), srv.api(KEY_B));
    let mixed = a.conversation("old and new").await;
    let quiet = a.conversation("all old").await;
    let other = b.conversation("no retention").await;
    for text in ["old 1", "old 2", "old 3"] {
        say(&a, &mixed, text).await;
    }
    say(&a, &quiet, "long ago").await;
    say(&b, &other, "kept for ever").await;

    tokio::time::sleep(Duration::from_secs_f64(KEEP_SECS + 0.5)).await;
    assert_eq!(say(&a, &mixed, "new").await, 4, "{backend:?}");
    // Within a sweep or two the old messages are gone; the new one (far younger than the
    // retention) stays, with its seq.
    // (one sweep works room by room, so wait for both rooms, not only the first one swept)
    eventually(|| async {
        (history(&a, &mixed).await.len() == 1 && history(&a, &quiet).await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(history(&a, &mixed).await, [("new".to_string(), 4)], "{backend:?}");
    assert!(history(&a, &quiet).await.is_empty(), "{backend:?}");
    let (s, room) = a.get(&format!("/v1.0/conversations/{quiet}")).await;
    assert_eq!((s, room["name"].as_str()), (200, Some("all old")), "{backend:?}: the room stays: {room}");
    assert_eq!(history(&b, &other).await, [("kept for ever".to_string(), 1)], "{backend:?}");

    // Resuming below the oldest kept message is "history lost"; from there on it recovers.
    let (_, op) = a.post("/v1.0/tokens", json!({"identity": "sup", "all_conversations": true})).await;
    let mut ws = srv.ws(op["token"].as_str().unwrap()).await;
    let sub = ws.subscribe(&mixed, Some(1)).await;
    assert_eq!((sub["recovered"].as_bool(), sub["seq"].as_u64()), (Some(false), Some(4)), "{backend:?}: {sub}");
    ws.send(json!({"type": "unsubscribe", "conversation_id": mixed})).await;
    assert_eq!(ws.next_real().await["type"], "unsubscribed");
    let sub = ws.subscribe(&mixed, Some(3)).await;
    assert_eq!(sub["recovered"], true, "{backend:?}: {sub}");
    assert_eq!(ws.next_real().await["message"]["text"], "new", "{backend:?}");
    let sub = ws.subscribe(&quiet, Some(0)).await;
    assert_eq!((sub["recovered"].as_bool(), sub["seq"].as_u64()), (Some(false), Some(1)), "{backend:?}: {sub}");

    // The emptied room takes messages again, numbered on from where it was.
    assert_eq!(say(&a, &quiet, "back again").await, 2, "{backend:?}");
    assert_eq!(ws.next_real().await["message"]["seq"], 2, "{backend:?}");
    srv.stop().await;
}
