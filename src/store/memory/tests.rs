//! The memory store's own rules: seq slicing and gap-free, deduplicating appends.

use super::*;
use crate::model::{Direction, MessageStatus, now};

fn msgs(n: u64) -> Vec<Message> {
    (1..=n)
        .map(|seq| Message {
            id: Uuid::now_v7(),
            conversation_id: Uuid::nil(),
            seq,
            author: None,
            direction: Direction::Outbound,
            text: seq.to_string(),
            medias: vec![],
            status: MessageStatus::Sent,
            client_id: None,
            tm_create: now(),
            channel: None,
            deliveries: vec![],
            via: None,
            visibility: Default::default(),
            edited_at: None,
            deleted_at: None,
            template: None,
            tag: None,
        })
        .collect()
}

fn seqs(s: &[Message]) -> Vec<u64> {
    s.iter().map(|m| m.seq).collect()
}

#[test]
fn slices_history_by_seq() {
    let log = msgs(10);
    let r = |after, before, limit| seqs(&log[slice(0, log.len(), SeqRange { after, before, limit })]);
    assert_eq!(r(None, None, 3), vec![8, 9, 10]);
    assert_eq!(r(None, Some(8), 3), vec![5, 6, 7]);
    assert_eq!(r(Some(2), None, 3), vec![3, 4, 5]);
    assert_eq!(r(Some(8), None, 5), vec![9, 10]);
    assert_eq!(r(Some(2), Some(5), 10), vec![3, 4]);
    assert_eq!(r(Some(10), None, 5), Vec::<u64>::new());
    assert_eq!(r(Some(50), None, 5), Vec::<u64>::new());
    assert_eq!(r(None, Some(1), 5), Vec::<u64>::new());
    assert_eq!(r(None, Some(100), 2), vec![9, 10]);
    assert_eq!(r(Some(5), Some(3), 2), Vec::<u64>::new());
}

#[test]
fn slices_a_trimmed_history_by_seq() {
    // Seqs 1..=4 were trimmed: the log holds 5..=10.
    let log = msgs(10).split_off(4);
    let r = |after, before, limit| seqs(&log[slice(4, log.len(), SeqRange { after, before, limit })]);
    assert_eq!(r(None, None, 3), vec![8, 9, 10]);
    assert_eq!(r(Some(0), None, 3), vec![5, 6, 7]);
    assert_eq!(r(Some(6), None, 2), vec![7, 8]);
    assert_eq!(r(None, Some(7), 5), vec![5, 6]);
    assert_eq!(r(None, Some(3), 5), Vec::<u64>::new());
    assert_eq!(r(Some(2), Some(6), 5), vec![5]);
}

#[tokio::test]
async fn append_assigns_gap_free_seq_and_dedupes() {
    let store = MemoryStore::new(LocalBus::new(1).0, Duration::from_secs(60));
    let c = Conversation {
        id: Uuid::now_v7(),
        tenant_id: Uuid::nil(),
        name: String::new(),
        detail: String::new(),
        metadata: serde_json::json!({}),
        last_seq: 0,
        tm_create: now(),
        tm_update: now(),
        owner_type: None,
        owner_id: None,
        lifecycle: Default::default(),
        timers: None,
    };
    store.create_conversation(&c).await.unwrap();
    let mut m = msgs(1).remove(0);
    m.conversation_id = c.id;
    let draft = |key: Option<&str>| Draft {
        message: Message { id: Uuid::now_v7(), ..m.clone() },
        idempotency_key: key.map(String::from),
        webhook_event: None,
    };
    let a = store.append(draft(Some("k"))).await.unwrap();
    let b = store.append(draft(None)).await.unwrap();
    let again = store.append(draft(Some("k"))).await.unwrap();
    assert_eq!((a.message.seq, b.message.seq), (1, 2));
    assert!(again.duplicate);
    assert_eq!(again.message.id, a.message.id);
    assert_eq!(store.room_state(c.id).await.unwrap().unwrap().seq, 2);
    assert_eq!(store.get_conversation(Uuid::nil(), c.id).await.unwrap().unwrap().last_seq, 2);
    assert!(store.get_conversation(Uuid::now_v7(), c.id).await.unwrap().is_none());
}

#[tokio::test]
async fn trim_removes_the_oldest_in_bounded_steps_and_keeps_seqs() {
    let store = MemoryStore::new(LocalBus::new(1).0, Duration::from_secs(60));
    let c = Conversation {
        id: Uuid::now_v7(),
        tenant_id: Uuid::nil(),
        name: String::new(),
        detail: String::new(),
        metadata: serde_json::json!({}),
        last_seq: 0,
        tm_create: now(),
        tm_update: now(),
        owner_type: None,
        owner_id: None,
        lifecycle: Default::default(),
        timers: None,
    };
    store.create_conversation(&c).await.unwrap();
    let old = now() - chrono::TimeDelta::days(2);
    for (i, mut m) in msgs(5).into_iter().enumerate() {
        m.conversation_id = c.id;
        m.seq = 0;
        if i < 3 {
            m.tm_create = old;
            m.medias = vec![crate::model::Media::link(format!("https://x/{i}"), String::new())];
        }
        store.append(Draft { message: m, idempotency_key: Some(format!("k{i}")), webhook_event: None }).await.unwrap();
    }
    let cutoff = now() - chrono::TimeDelta::days(1);
    let first = store.trim_history(c.id, cutoff, 2).await.unwrap();
    assert_eq!((first.removed, first.medias.len()), (2, 2));
    let rest = store.trim_history(c.id, cutoff, 2).await.unwrap();
    assert_eq!(rest.removed, 1, "stops at the first newer message");
    assert_eq!(store.trim_history(c.id, cutoff, 2).await.unwrap(), Trimmed::default(), "idempotent");
    let all = store.messages(c.id, SeqRange { after: None, before: None, limit: 10 }).await.unwrap();
    assert_eq!(seqs(&all), vec![4, 5]);
    assert_eq!(store.first_retained_seq(c.id).await.unwrap(), 4);
    assert_eq!(store.room_state(c.id).await.unwrap().unwrap().seq, 5);
    let mut m = msgs(1).remove(0);
    (m.conversation_id, m.seq) = (c.id, 0);
    let retry = store.append(Draft { message: m.clone(), idempotency_key: Some("k0".into()), webhook_event: None });
    assert!(matches!(retry.await, Err(Error::Conflict(_))), "the original is gone");
    let next = store.append(Draft { message: m, idempotency_key: None, webhook_event: None }).await.unwrap();
    assert_eq!(next.message.seq, 6);
}
