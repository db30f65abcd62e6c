//! The Redis store's own guarantees, checked on the store directly (no HTTP in between):
//! race-free room creation across two connections, history trimming together with its
//! indexes, and delivery-status updates that survive concurrency and show on every read.

use crate::common;
use crate::common::redis::{RedisServer, tenant_id};
use serde_json::json;
use std::sync::Arc;
use switchboard::config::Backend;
use switchboard::model::{Conversation, Delivery, Direction, Message, MessageStatus};
use switchboard::redis::RedisClient;
use switchboard::store::{Draft, RedisStore, SeqRange, Store};
use uuid::Uuid;

/// A store of its own on `redis` (what a node builds), with history kept to `history_max_len`.
async fn store_on(redis: &RedisServer, history_max_len: u64) -> RedisStore {
    let mut config = common::test_config();
    config.store.backend = Backend::Redis;
    config.redis.url = redis.url();
    config.redis.history_max_len = history_max_len;
    RedisStore::new(RedisClient::connect(&config.redis).await.expect("connect"), &config)
}

fn message(conversation: Uuid, text: &str) -> Message {
    Message {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        seq: 0,
        author: None,
        direction: Direction::Outbound,
        text: text.into(),
        medias: vec![],
        status: MessageStatus::Sent,
        client_id: None,
        tm_create: switchboard::model::now(),
        channel: None,
        deliveries: vec![],
        via: None,
        visibility: Default::default(),
        edited_at: None,
        deleted_at: None,
        template: None,
        tag: None,
    }
}

#[tokio::test]
async fn concurrent_room_creation_ends_with_one_room() {
    use switchboard::model::{Address, AddressType};
    use switchboard::store::{Binding, ChannelStore};
    let redis = RedisServer::start().await;
    // Two stores with their own connections: two nodes racing on the same inbound peer.
    let stores = [Arc::new(store_on(&redis, 100).await), Arc::new(store_on(&redis, 100).await)];
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

    // The room itself: creating the same conversation twice at once succeeds once.
    let c = conversation(tenant_id("a"));
    let (x, y) = tokio::join!(stores[0].create_conversation(&c), stores[1].create_conversation(&c));
    assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1, "{x:?} {y:?}");
    assert!(matches!(x.err().or(y.err()), Some(switchboard::error::Error::Conflict(_))));
}

fn conversation(tenant: Uuid) -> Conversation {
    let t = switchboard::model::now();
    Conversation {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        name: "n".into(),
        detail: String::new(),
        metadata: json!({}),
        last_seq: 0,
        tm_create: t,
        tm_update: t,
        owner_type: None,
        owner_id: None,
        lifecycle: Default::default(),
        timers: None,
    }
}

#[tokio::test]
async fn history_trims_with_its_indexes_and_delivery_updates_stick() {
    use switchboard::store::ChannelStore;
    let redis = RedisServer::start().await;
    let store = store_on(&redis, 10).await;
    let tenant = tenant_id("a");
    let c = conversation(tenant);
    store.create_conversation(&c).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..100 {
        let d = Draft {
            message: message(c.id, &format!("{i}")),
            idempotency_key: Some(format!("api:k{i}")),
            webhook_event: None,
        };
        let a = store.append(d).await.unwrap();
        assert_eq!((a.message.seq, a.duplicate), (i + 1, false));
        ids.push(a.message.id);
    }
    let first = store.first_retained_seq(c.id).await.unwrap();
    let kept = store.messages(c.id, SeqRange { after: None, before: None, limit: 500 }).await.unwrap();
    assert!((10..=74).contains(&kept.len()), "kept {}", kept.len());
    assert_eq!((kept[0].seq, kept.last().map(|m| m.seq)), (first, Some(100)));
    assert!(store.get_message(c.id, ids[0]).await.unwrap().is_none(), "trimmed");
    let mut conn = redis.connection().await;
    let indexed: usize =
        redis::cmd("HLEN").arg(format!("switchboard:room:{{{}}}:ids", c.id)).query_async(&mut conn).await.unwrap();
    assert_eq!(indexed, kept.len(), "the id index is trimmed with the history");
    let again = store
        .append(Draft { message: message(c.id, "x"), idempotency_key: Some("api:k0".into()), webhook_event: None })
        .await;
    assert!(matches!(again, Err(switchboard::error::Error::Conflict(_))), "{again:?}");

    // Two delivery reports for different participants at once: both stick (compare-and-set).
    let last = ids[99];
    let report = |status| Delivery {
        participant_id: Uuid::now_v7(),
        account_id: Uuid::now_v7(),
        channel: switchboard::model::AddressType::Tel,
        to: "+15550002222".into(),
        status,
        provider_message_id: None,
        error: None,
        attempts: 1,
        tm_update: switchboard::model::now(),
    };
    let (d1, d2) = (report(MessageStatus::Sent), report(MessageStatus::Delivered));
    let (r1, r2) = tokio::join!(store.update_delivery(c.id, last, &d1), store.update_delivery(c.id, last, &d2));
    assert!(r1.unwrap().is_some() && r2.unwrap().is_some());
    assert!(store.update_delivery(c.id, last, &d1).await.unwrap().is_none(), "a repeated report changes nothing");
    let stored = store.get_message(c.id, last).await.unwrap().unwrap();
    assert_eq!(stored.deliveries.len(), 2);
    let page = store.messages(c.id, SeqRange { after: Some(99), before: None, limit: 5 }).await.unwrap();
    assert_eq!(page, vec![stored.clone()], "history reads see the update");
    let dup = store
        .append(Draft { message: message(c.id, "x"), idempotency_key: Some("api:k99".into()), webhook_event: None })
        .await;
    assert_eq!(dup.unwrap().message, stored, "a retry returns the message as it is now");

    // Deleting the room removes its keys (idempotency keys expire on their own).
    assert!(store.delete_conversation(tenant, c.id).await.unwrap());
    let left: Vec<String> =
        redis::cmd("KEYS").arg(format!("switchboard:*{{{}}}*", c.id)).query_async(&mut conn).await.unwrap();
    assert!(left.iter().all(|k| k.contains(":idem:")), "{left:?}");
    assert!(store.room_state(c.id).await.unwrap().is_none());
}

/// `append_many` (one pipeline per room): seqs follow the drafts' order per room, an unknown
/// room fails alone, and a flushed script cache (as after a Redis restart) is reloaded
/// without losing or doubling any draft.
#[tokio::test]
async fn pipelined_appends_keep_order_per_room_and_survive_a_script_flush() {
    let redis = RedisServer::start().await;
    let store = store_on(&redis, 1000).await;
    let tenant = tenant_id("a");
    let (a, b) = (conversation(tenant), conversation(tenant));
    store.create_conversation(&a).await.unwrap();
    store.create_conversation(&b).await.unwrap();
    let mut conn = redis.connection().await;
    for round in 0..2 {
        // Round 0 runs with the script never loaded on this server, round 1 after a flush.
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
        let rooms = [a.id, b.id, a.id, Uuid::now_v7(), a.id, b.id];
        let drafts = rooms.iter().enumerate().map(|(i, &r)| Draft {
            message: message(r, &format!("{round}-{i}")),
            idempotency_key: None,
            webhook_event: None,
        });
        let out = store.append_many(drafts.collect()).await;
        let got: Vec<Option<u64>> = out.iter().map(|r| r.as_ref().ok().map(|m| m.message.seq)).collect();
        let base = round * 3;
        let b_base = round * 2;
        assert_eq!(
            got,
            vec![Some(base + 1), Some(b_base + 1), Some(base + 2), None, Some(base + 3), Some(b_base + 2)],
            "round {round}"
        );
        assert!(matches!(out[3], Err(switchboard::error::Error::NotFound(_))), "{:?}", out[3]);
    }
    let texts: Vec<String> = store
        .messages(a.id, SeqRange { after: None, before: None, limit: 100 })
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, ["0-0", "0-2", "0-4", "1-0", "1-2", "1-4"]);
}
