//! Private notes and messages posted over REST with operator and agent tokens (not only API
//! keys): who may post what, that a token posts as its own participant, and that a note stays
//! among staff — in REST history, on an end user's WebSocket and on the SMS line. Both backends.

use crate::common::channels::{config, create_account, messages, settled, twilio_account, twilio_stub};
use crate::common::stub::eventually;
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::{Value, json};

#[tokio::test]
async fn operator_and_agent_tokens_post_notes_over_rest_that_never_reach_end_users_or_sms() {
    on_every_backend(notes_by_token_on).await;
}

async fn notes_by_token_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = twilio_stub().await;
    let api = srv.api(KEY_A);
    let acc = create_account(&srv, twilio_account("line", "+15005550006", "twilio-token-0123456789", &stub.url), &[])
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = api.conversation("refund").await;
    let path = format!("/v1.0/conversations/{c}/messages");
    let (s, sms) = api
        .post(
            &format!("/v1.0/conversations/{c}/participants"),
            json!({"address": {"type": "tel", "target": "+14155550123"}, "account_id": acc}),
        )
        .await;
    assert_eq!(s, 201, "{sms}");
    api.webchat(&c, "alice").await;
    let alice_t = api.token("alice", &[&c]).await;
    let alice = srv.as_token(&alice_t);
    let mut alice_ws = srv.ws(&alice_t).await;
    alice_ws.subscribe(&c, None).await;
    let (_, t) = api.post("/v1.0/tokens", json!({"identity": "ann", "role": "agent"})).await;
    let ann = srv.as_token(t["token"].as_str().unwrap());
    let (_, t) = api.post("/v1.0/tokens", json!({"identity": "sup", "all_conversations": true})).await;
    let sup = srv.as_token(t["token"].as_str().unwrap());

    // An agent token posts a note, as its own (new) `agent` participant.
    let (s, note) = ann.post(&path, json!({"text": "VIP, refund him", "visibility": "internal"})).await;
    assert_eq!(
        (s, note["visibility"].as_str(), note["seq"].as_u64()),
        (201, Some("internal"), Some(1)),
        "{backend:?}: {note}"
    );
    assert!(note.get("deliveries").is_none(), "{backend:?}: no delivery planned for a note: {note}");
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    let ann_part = parts["result"].as_array().unwrap().iter().find(|p| p["address"]["target"] == "ann").cloned();
    let ann_part = ann_part.unwrap_or_else(|| panic!("{backend:?}: ann joined: {parts}"));
    assert_eq!((&ann_part["address"]["type"], &note["author"]), (&json!("agent"), &ann_part["id"]), "{backend:?}");

    // End users: no note, and no REST posting at all (they write over the WebSocket).
    let (s, e) = alice.post(&path, json!({"text": "psst", "visibility": "internal"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")), "{backend:?}: {e}");
    assert_eq!(alice.post(&path, json!({"text": "hi"})).await.0, 403, "{backend:?}");
    // A token posts as itself, never as somebody else.
    let (s, e) = ann.post(&path, json!({"text": "x", "author_participant_id": sms["id"]})).await;
    assert_eq!(s, 403, "{backend:?}: {e}");

    // An operator token posts a public reply (it goes out by SMS) and a note of its own.
    let (s, reply) = sup.post(&path, json!({"text": "Your refund is on its way"})).await;
    assert_eq!((s, reply["seq"].as_u64()), (201, Some(2)), "{backend:?}: {reply}");
    let (s, note2) = sup.post(&path, json!({"text": "done, closing soon", "visibility": "internal"})).await;
    assert_eq!((s, note2["seq"].as_u64()), (201, Some(3)), "{backend:?}: {note2}");
    assert_eq!(settled(&srv, &c, reply["id"].as_str().unwrap()).await["status"], "sent", "{backend:?}");

    // The API key's history has everything; the end user's has the public reply only.
    let texts = |m: &[Value]| m.iter().map(|m| m["text"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(
        texts(&messages(&srv, &c).await),
        ["VIP, refund him", "Your refund is on its way", "done, closing soon"],
        "{backend:?}"
    );
    let (_, mine) = alice.get(&path).await;
    assert_eq!(texts(mine["result"].as_array().unwrap()), ["Your refund is on its way"], "{backend:?}");
    // Live, the end user gets the reply (seq 2) and nothing else; the SMS line only the reply.
    let f = alice_ws.next_real().await;
    assert_eq!(
        (f["message"]["text"].as_str(), f["message"]["seq"].as_u64()),
        (Some("Your refund is on its way"), Some(2))
    );
    alice_ws.send(json!({"type": "ping", "id": "end"})).await;
    loop {
        // Only the reply's delivery reports may come before the pong.
        let f = alice_ws.next_real().await;
        if f["type"] == "pong" {
            break;
        }
        assert_eq!((f["type"].as_str(), f["message"]["seq"].as_u64()), (Some("message_updated"), Some(2)), "{f}");
    }
    let bodies = eventually(|| async {
        let b: Vec<String> = stub.requests().iter().filter_map(|r| r.form_field("Body")).collect();
        (!b.is_empty()).then_some(b)
    })
    .await;
    assert_eq!(bodies, ["Your refund is on its way"], "{backend:?}: no note reached the provider");

    // An agent posts only where it may act: not in another agent's conversation.
    let (s, v) = api.put(&format!("/v1.0/conversations/{c}"), json!({"owner_id": "ben"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, e) = ann.post(&path, json!({"text": "mine?", "visibility": "internal"})).await;
    assert_eq!(s, 403, "{backend:?}: {e}");
    assert_eq!(messages(&srv, &c).await.len(), 3, "{backend:?}");
    srv.stop().await;
}
