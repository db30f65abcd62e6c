//! WebSocket chat against the real server: rooms, ordering, resume, retries, typing, reads,
//! presence, operators and bursts of sends; `closes` covers when and why the server closes a
//! socket (slow readers, bad frames, tokens, shutdown).

mod closes;

use crate::common;
use crate::common::{KEY_A, TestServer, Ws};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A conversation with webchat participants `alice` and `bob`, and a connected, subscribed
/// client for each.
async fn room(srv: &TestServer) -> (String, Ws, Ws) {
    let api = srv.api(KEY_A);
    let c = api.conversation("room").await;
    api.webchat(&c, "alice").await;
    api.webchat(&c, "bob").await;
    let mut alice = srv.ws(&api.token("alice", &[&c]).await).await;
    let mut bob = srv.ws(&api.token("bob", &[&c]).await).await;
    assert_eq!(alice.subscribe(&c, None).await["seq"], 0);
    assert_eq!(bob.subscribe(&c, None).await["seq"], 0);
    (c, alice, bob)
}

fn send(c: &str, text: &str, client_id: &str) -> Value {
    json!({"type": "send", "conversation_id": c, "text": text, "client_id": client_id})
}

#[tokio::test]
async fn two_clients_exchange_messages_in_order() {
    let srv = TestServer::start().await;
    let (c, mut alice, mut bob) = room(&srv).await;
    for i in 0..20 {
        let (who, text) = if i % 2 == 0 { (&mut alice, format!("a{i}")) } else { (&mut bob, format!("b{i}")) };
        who.send(send(&c, &text, &format!("c{i}"))).await;
    }
    // Each side sees all 20 messages in seq order, whoever wrote them.
    for ws in [&mut alice, &mut bob] {
        let mut seqs = Vec::new();
        let mut acks = 0;
        while seqs.len() < 20 {
            let f = ws.next().await;
            match f["type"].as_str().unwrap() {
                "message" => seqs.push(f["message"]["seq"].as_u64().unwrap()),
                "ack" => acks += 1,
                "presence" => {}
                other => panic!("unexpected {other}: {f}"),
            }
        }
        assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
        while acks < 10 {
            assert_eq!(ws.next_of("ack").await["type"], "ack");
            acks += 1;
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn rest_post_reaches_subscribers_and_ack_follows_append() {
    let srv = TestServer::start().await;
    let (c, mut alice, _bob) = room(&srv).await;
    let api = srv.api(KEY_A);
    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "from the backend"})).await;
    assert_eq!(s, 201);
    let f = alice.next_of("message").await;
    assert_eq!(f["message"]["id"], m["id"]);
    assert_eq!(f["message"]["text"], "from the backend");

    alice.send(send(&c, "hi", "k1")).await;
    let ack = alice.next_of("ack").await;
    assert_eq!((ack["client_id"].as_str(), ack["seq"].as_u64()), (Some("k1"), Some(2)));
    // Acked means stored: the REST history has it.
    let (_, one) = api.get(&format!("/v1.0/conversations/{c}/messages/{}", ack["message_id"].as_str().unwrap())).await;
    assert_eq!(one["text"], "hi");
    srv.stop().await;
}

#[tokio::test]
async fn reconnect_with_since_gets_exactly_the_gap() {
    let srv = TestServer::start().await;
    let (c, mut alice, mut bob) = room(&srv).await;
    for i in 1..=3 {
        alice.send(send(&c, &format!("m{i}"), &format!("k{i}"))).await;
        alice.next_of("ack").await;
    }
    for _ in 0..3 {
        bob.next_of("message").await;
    }
    let sub = bob.subscribe(&c, None).await;
    let epoch = sub["epoch"].as_str().unwrap().to_string();
    drop(bob); // network drop
    for i in 4..=7 {
        alice.send(send(&c, &format!("m{i}"), &format!("k{i}"))).await;
        alice.next_of("ack").await;
    }
    let api = srv.api(KEY_A);
    let mut bob = srv.ws(&api.token("bob", &[&c]).await).await;
    bob.send(json!({"type": "subscribe", "conversation_id": c, "since": 3, "epoch": epoch})).await;
    let s = bob.next_of("subscribed").await;
    assert_eq!((s["recovered"].as_bool(), s["seq"].as_u64()), (Some(true), Some(7)));
    for want in 4..=7u64 {
        let m = bob.next_of("message").await;
        assert_eq!(m["message"]["seq"], want);
    }
    // Then live, with no duplicate of the replay.
    alice.send(send(&c, "m8", "k8")).await;
    assert_eq!(bob.next_of("message").await["message"]["seq"], 8);

    // A foreign epoch means the history the client holds is not ours: reload.
    let mut carol = srv.ws(&api.token("bob", &[&c]).await).await;
    carol.send(json!({"type": "subscribe", "conversation_id": c, "since": 3, "epoch": "other"})).await;
    let s = carol.next_of("subscribed").await;
    assert_eq!((s["recovered"].as_bool(), s["seq"].as_u64()), (Some(false), Some(8)));
    srv.stop().await;
}

#[tokio::test]
async fn gap_beyond_recovery_window_says_reload() {
    let mut cfg = common::test_config();
    cfg.ws.max_recovery = 2;
    let srv = TestServer::start_with(cfg).await;
    let (c, mut alice, _bob) = room(&srv).await;
    for i in 1..=5 {
        alice.send(send(&c, "x", &format!("k{i}"))).await;
        alice.next_of("ack").await;
    }
    let api = srv.api(KEY_A);
    let mut late = srv.ws(&api.token("bob", &[&c]).await).await;
    let s = late.subscribe(&c, Some(1)).await;
    assert_eq!((s["recovered"].as_bool(), s["seq"].as_u64()), (Some(false), Some(5)));
    let s = late.subscribe(&c, Some(3)).await;
    assert_eq!(s["recovered"], true);
    srv.stop().await;
}

#[tokio::test]
async fn duplicate_client_id_is_acked_twice_stored_once() {
    let srv = TestServer::start().await;
    let (c, mut alice, mut bob) = room(&srv).await;
    alice.send(send(&c, "once", "same")).await;
    let a1 = alice.next_of("ack").await;
    alice.send(send(&c, "once", "same")).await;
    let a2 = alice.next_of("ack").await;
    assert_eq!(a1["message_id"], a2["message_id"]);
    assert_eq!((a1["duplicate"].as_bool(), a2["duplicate"].as_bool()), (Some(false), Some(true)));
    alice.send(send(&c, "next", "other")).await;
    assert_eq!(alice.next_of("ack").await["seq"], 2);
    assert_eq!(bob.next_of("message").await["message"]["seq"], 1);
    assert_eq!(bob.next_of("message").await["message"]["seq"], 2, "the retry was not fanned out again");
    srv.stop().await;
}

#[tokio::test]
async fn typing_read_and_presence_reach_the_room() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("live").await;
    api.webchat(&c, "alice").await;
    api.webchat(&c, "bob").await;
    let mut alice = srv.ws(&api.token("alice", &[&c]).await).await;
    alice.subscribe(&c, None).await;
    let mut bob = srv.ws(&api.token("bob", &[&c]).await).await;
    let s = bob.subscribe(&c, None).await;
    assert_eq!(s["online"], json!(["alice", "bob"]));
    let own = alice.next().await;
    assert_eq!((own["identity"].as_str(), own["state"].as_str()), (Some("alice"), Some("joined")));
    let p = alice.next().await;
    assert_eq!(
        (p["type"].as_str(), p["identity"].as_str(), p["state"].as_str()),
        (Some("presence"), Some("bob"), Some("joined"))
    );
    // An operator watching the room sees who types by identity; end users only by participant.
    let (_, t) = api.post("/v1.0/tokens", json!({"identity": "agent-7", "all_conversations": true})).await;
    let mut op = srv.ws(t["token"].as_str().unwrap()).await;
    op.subscribe(&c, None).await;
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    let bob_pid =
        parts["result"].as_array().unwrap().iter().find(|p| p["address"]["target"] == "bob").unwrap()["id"].clone();
    bob.send(json!({"type": "typing", "conversation_id": c})).await;
    let t = alice.next_of("typing").await;
    assert_eq!((&t["participant_id"], t.get("identity")), (&bob_pid, None), "no identity for end users: {t}");
    let t = op.next_of("typing").await;
    assert_eq!((&t["participant_id"], t["identity"].as_str()), (&bob_pid, Some("bob")));
    op.send(json!({"type": "typing", "conversation_id": c})).await;
    let t = alice.next_of("typing").await;
    assert!(t.get("identity").is_none() && !t.to_string().contains("agent-7"), "the operator's identity leaked: {t}");
    bob.send(json!({"type": "read", "conversation_id": c, "seq": 0})).await;
    let r = alice.next_of("read").await;
    assert_eq!((&r["participant_id"], r.get("identity")), (&bob_pid, None), "{r}");
    assert_eq!(op.next_of("read").await["identity"], "bob");
    drop(bob);
    let p = alice.next().await;
    assert_eq!((p["type"].as_str(), p["state"].as_str()), (Some("presence"), Some("left")));
    srv.stop().await;
}

#[tokio::test]
async fn operator_token_joins_any_room_and_writes_as_participant() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("ops").await;
    let (_, t) = api.post("/v1.0/tokens", json!({"identity": "agent-7", "all_conversations": true})).await;
    let mut op = srv.ws(t["token"].as_str().unwrap()).await;
    let s = op.subscribe(&c, None).await;
    assert!(s.get("participant_id").is_none() && s.get("last_read_seq").is_none(), "not a participant yet: {s}");
    op.send(send(&c, "hello, how can I help?", "op1")).await;
    let ack = op.next_of("ack").await;
    assert_eq!(ack["seq"], 1);
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    assert_eq!(parts["result"][0]["address"]["target"], "agent-7");
    assert_eq!(ack["author_participant_id"], parts["result"][0]["id"], "the ack names the new participant");
    srv.stop().await;
}

/// A client firing many `send`s without waiting for acks (they are posted as bursts): every
/// one is answered in the order sent — acks, a duplicate's original seq, an invalid one's
/// error — and the room sees the messages in that order, on both backends.
#[tokio::test]
async fn a_burst_of_sends_is_answered_and_delivered_in_send_order() {
    common::on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let (c, alice, mut bob) = room(&srv).await;
        let api = srv.api(KEY_A);
        let other = api.conversation("second").await;
        api.webchat(&other, "alice").await;
        let mut alice2 = srv.ws(&api.token("alice", &[&c, &other]).await).await;
        // Everything written at once, unflushed, so the server reads it as one burst.
        let mut expected = Vec::new();
        for i in 0..120 {
            let (room, text, id) = match i {
                40 => (c.clone(), "   ".to_string(), "bad".to_string()),
                77 => (c.clone(), "m10 again".to_string(), "m10".to_string()),
                _ if i % 3 == 0 => (other.clone(), format!("o{i}"), format!("o{i}")),
                _ => (c.clone(), format!("m{i}"), format!("m{i}")),
            };
            let f = json!({"type": "send", "conversation_id": room, "text": text, "client_id": id});
            alice2.stream.feed(Message::Text(f.to_string().into())).await.unwrap();
            expected.push((room, id));
        }
        alice2.stream.flush().await.unwrap();
        let mut answers = Vec::new();
        let mut seq_of: std::collections::HashMap<String, u64> = Default::default();
        while answers.len() < expected.len() {
            let f = alice2.next().await;
            match f["type"].as_str().unwrap() {
                "ack" => {
                    let id = f["client_id"].as_str().unwrap().to_string();
                    let seq = f["seq"].as_u64().unwrap();
                    if id == "m10" && f["duplicate"] == true {
                        assert_eq!(seq, seq_of["m10"], "a retried client_id answers with the original seq");
                    } else {
                        seq_of.insert(id.clone(), seq);
                    }
                    answers.push((f["conversation_id"].as_str().unwrap().to_string(), id));
                }
                "error" => {
                    assert_eq!(f["code"], "empty_message", "{f}");
                    answers.push((f["conversation_id"].as_str().unwrap().to_string(), f["client_id"].to_string()));
                }
                other => panic!("unexpected {other}: {f}"),
            }
        }
        let bad = answers.iter().position(|(_, id)| id == "\"bad\"").expect("the empty send got an error");
        answers[bad].1 = "bad".into();
        assert_eq!(answers, expected, "one answer per send, in the order sent ({backend:?})");
        // Seqs per room follow the send order, with no gaps.
        for room in [&c, &other] {
            let seqs: Vec<u64> = expected
                .iter()
                .enumerate()
                .filter(|(i, (r, id))| r == room && id != "bad" && *i != 77)
                .map(|(_, (_, id))| seq_of[id])
                .collect();
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{backend:?}");
        }
        // Bob (in the first room only) receives its messages once each, in the sent order.
        let want: Vec<String> = expected
            .iter()
            .enumerate()
            .filter(|(i, (r, id))| *r == c && id != "bad" && *i != 77)
            .map(|(_, (_, id))| id.clone())
            .collect();
        let mut got = Vec::new();
        while got.len() < want.len() {
            let f = bob.next_of("message").await;
            got.push(f["message"]["client_id"].as_str().unwrap().to_string());
        }
        assert_eq!(got, want, "bob sees each message once, in order ({backend:?})");
        drop(alice);
        srv.stop().await;
    })
    .await;
}

/// Both sides of a room send bursts at the same moment. A sender's own message goes out right
/// behind its ack when it is the next seq the sender is owed (`ws::send`'s echo), so this is
/// where a message of the other side still on its way could be skipped: each side must still
/// get every message exactly once, in seq order, and one ack per send.
#[tokio::test]
async fn both_sides_sending_at_once_each_get_every_message_once_in_order() {
    common::on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let (c, mut alice, mut bob) = room(&srv).await;
        const EACH: usize = 60;
        for round in 0..3 {
            for i in 0..EACH / 3 {
                let n = round * EACH / 3 + i;
                let fa = send(&c, &format!("a{n}"), &format!("a{n}"));
                let fb = send(&c, &format!("b{n}"), &format!("b{n}"));
                alice.stream.feed(Message::Text(fa.to_string().into())).await.unwrap();
                bob.stream.feed(Message::Text(fb.to_string().into())).await.unwrap();
            }
            let (a, b) = tokio::join!(alice.stream.flush(), bob.stream.flush());
            a.unwrap();
            b.unwrap();
        }
        for (name, ws) in [("alice", &mut alice), ("bob", &mut bob)] {
            let (mut seqs, mut acks) = (Vec::new(), 0);
            while seqs.len() < 2 * EACH || acks < EACH {
                let f = ws.next().await;
                match f["type"].as_str().unwrap() {
                    "message" => seqs.push(f["message"]["seq"].as_u64().unwrap()),
                    "ack" => acks += 1,
                    "presence" => {}
                    other => panic!("{name}: unexpected {other}: {f}"),
                }
            }
            assert_eq!(seqs, (1..=2 * EACH as u64).collect::<Vec<_>>(), "{name} ({backend:?})");
            assert_eq!(acks, EACH, "{name} ({backend:?})");
        }
        srv.stop().await;
    })
    .await;
}
