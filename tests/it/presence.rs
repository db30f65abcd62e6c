//! Room presence at scale, as members see it: join/leave announcements coalesced per room,
//! none at all in big rooms (whose `subscribed` lists nobody online), and counts on demand
//! with `presence_stats`. On both backends.

use crate::common::{Backend, KEY_A, TestServer, Ws, on_every_backend, test_config};
use serde_json::{Value, json};

/// Reads frames until `done` says so; returns every frame read.
async fn read_until(ws: &mut Ws, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    while !done(&got) {
        got.push(ws.next().await);
    }
    got
}

fn presence(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "presence")
        .map(|f| format!("{} {}", f["identity"].as_str().unwrap(), f["state"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn big_rooms_announce_no_presence_and_answer_counts_on_demand() {
    on_every_backend(async |backend: Backend| {
        let mut config = test_config();
        config.ws.presence_max_members = 3;
        let srv = TestServer::start_on(backend, config).await;
        let api = srv.api(KEY_A);
        let c = api.conversation("big").await;
        let mut members = Vec::new();
        for i in 0..6 {
            let id = format!("u{i}");
            api.webchat(&c, &id).await;
            let mut ws = srv.ws(&api.token(&id, &[&c]).await).await;
            let s = ws.subscribe(&c, None).await;
            let listed = s["online"].as_array().unwrap().len();
            // Up to 3 connections the room lists who is online; beyond, nobody.
            assert_eq!(listed, if i < 3 { i + 1 } else { 0 }, "{backend:?} u{i}: {s}");
            members.push(ws);
        }
        let last = members.last_mut().unwrap();
        last.send(json!({"type": "typing", "conversation_id": c})).await;
        let first = &mut members[0];
        let got = read_until(first, |f| f.iter().any(|f| f["type"] == "typing") && presence(f).len() >= 3).await;
        assert_eq!(presence(&got), vec!["u0 joined", "u1 joined", "u2 joined"], "{backend:?}: none past 3 members");
        first.send(json!({"type": "presence_stats", "conversation_id": c})).await;
        let stats = first.next_of("presence_stats").await;
        assert_eq!(
            (&stats["connections"], &stats["identities"], &stats["announced"]),
            (&json!(6), &json!(6), &json!(false)),
            "{backend:?}: {stats}"
        );
        // Not subscribed: no counts.
        let other = api.conversation("elsewhere").await;
        first.send(json!({"type": "presence_stats", "conversation_id": other})).await;
        assert_eq!(first.next_of("error").await["code"], "not_subscribed");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn joins_and_leaves_inside_one_window_are_coalesced() {
    on_every_backend(async |backend: Backend| {
        let mut config = test_config();
        // Long enough that the joins below all fall inside one window, even on a loaded machine.
        config.ws.presence_interval_ms = 3000;
        let srv = TestServer::start_on(backend, config).await;
        let api = srv.api(KEY_A);
        let c = api.conversation("window").await;
        for id in ["alice", "bob", "carol"] {
            api.webchat(&c, id).await;
        }
        let mut alice = srv.ws(&api.token("alice", &[&c]).await).await;
        alice.subscribe(&c, None).await;
        // bob comes and goes, carol stays: inside alice's window, so they wait for its end.
        let mut bob = srv.ws(&api.token("bob", &[&c]).await).await;
        bob.subscribe(&c, None).await;
        bob.send(json!({"type": "unsubscribe", "conversation_id": c})).await;
        bob.next_of("unsubscribed").await;
        let mut carol = srv.ws(&api.token("carol", &[&c]).await).await;
        carol.subscribe(&c, None).await;
        let got = read_until(&mut alice, |f| presence(f).iter().any(|p| p == "carol joined")).await;
        assert_eq!(presence(&got), vec!["alice joined", "carol joined"], "{backend:?}: bob's visit cancels out");
        srv.stop().await;
    })
    .await;
}

/// Staff presence is for staff: an end user (a widget visitor, a webchat user) never learns an
/// agent's identity from `online` or from a `presence` frame, while staff see everyone.
#[tokio::test]
async fn end_users_never_see_staff_identities_in_presence() {
    on_every_backend(async |backend: Backend| {
        let mut config = test_config();
        config.ws.presence_interval_ms = 0; // every change goes out at once, in order
        let srv = TestServer::start_on(backend, config).await;
        let api = srv.api(KEY_A);
        let c = api.conversation("staff presence").await;
        api.webchat(&c, "visitor").await;
        let mut visitor = srv.ws(&api.token("visitor", &[&c]).await).await;
        visitor.subscribe(&c, None).await;
        let (s, t) = api.post("/v1.0/tokens", json!({"identity": "ann", "role": "agent"})).await;
        assert_eq!(s, 201, "{t}");
        let mut agent = srv.ws(t["token"].as_str().unwrap()).await;
        let sub = agent.subscribe(&c, None).await;
        assert_eq!(sub["online"], json!(["ann", "visitor"]), "{backend:?}: staff see everyone: {sub}");

        api.webchat(&c, "friend").await;
        let mut friend = srv.ws(&api.token("friend", &[&c]).await).await;
        let fsub = friend.subscribe(&c, None).await;
        assert_eq!(fsub["online"], json!(["friend", "visitor"]), "{backend:?}: no staff listed to end users: {fsub}");
        // The agent's typing follows its own presence on the same road: once the visitor has it,
        // an announcement of ann would have come first.
        agent.send(json!({"type": "typing", "conversation_id": c})).await;
        let got = read_until(&mut visitor, |f| {
            f.iter().any(|f| f["type"] == "typing") && presence(f).contains(&"friend joined".to_string())
        })
        .await;
        assert!(!serde_json::to_string(&got).unwrap().contains("ann"), "{backend:?}: the visitor learnt ann: {got:?}");
        let seen = read_until(&mut agent, |f| presence(f).contains(&"friend joined".to_string())).await;
        assert!(presence(&seen).contains(&"friend joined".to_string()), "{backend:?}: staff see end users come");
        srv.stop().await;
    })
    .await;
}
