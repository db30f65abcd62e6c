//! The inbox's server side on both backends: canned responses (CRUD, conflicts, limits, who
//! may call, tenant isolation), read state kept per agent on the server (from REST and from
//! the WebSocket `read` frame, equal across two sign-ins), and what an end user may read of
//! its own conversation (names, not addresses).

use crate::agent_accounts::{PASSWORD, sign_in, signed_up};
use crate::common::stub::eventually;
use crate::common::{self, BACKENDS, KEY_A, KEY_B, TestServer};
use serde_json::{Value, json};

fn codes(list: &Value) -> Vec<String> {
    list["result"].as_array().unwrap().iter().map(|c| c["short_code"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn canned_responses_crud_conflicts_limits_and_isolation() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let session = signed_up(&srv, KEY_A, "ann@example.com", "agent").await;
        let agent = srv.api(session["token"].as_str().unwrap());
        let (s, thanks) =
            op.post("/v1.0/canned_responses", json!({"short_code": "thanks", "content": "Thank you!"})).await;
        assert_eq!(s, 201, "{backend:?}: {thanks}");
        let (s, _) =
            agent.post("/v1.0/canned_responses", json!({"short_code": "thx-2", "content": "Thanks again"})).await;
        assert_eq!(s, 201, "agents add canned responses too");
        op.post("/v1.0/canned_responses", json!({"short_code": "hello", "content": "Hi there"})).await;
        assert_eq!(codes(&agent.get("/v1.0/canned_responses").await.1), ["hello", "thanks", "thx-2"]);
        assert_eq!(codes(&agent.get("/v1.0/canned_responses?q=th").await.1), ["thanks", "thx-2"]);
        assert_eq!(codes(&agent.get("/v1.0/canned_responses?q=/tha").await.1), ["thanks"]);
        assert!(codes(&agent.get("/v1.0/canned_responses?q=zzz").await.1).is_empty());

        let (s, v) = op.post("/v1.0/canned_responses", json!({"short_code": "thanks", "content": "again"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("short_code_taken")));
        for (body, code) in [
            (json!({"short_code": "Bad Code", "content": "x"}), "invalid_short_code"),
            (json!({"short_code": "", "content": "x"}), "invalid_short_code"),
            (json!({"short_code": "a".repeat(65), "content": "x"}), "invalid_short_code"),
            (json!({"short_code": "ok", "content": "x".repeat(4097)}), "invalid_content"),
            (json!({"short_code": "ok", "content": "  "}), "invalid_content"),
        ] {
            let (s, v) = op.post("/v1.0/canned_responses", body).await;
            assert_eq!((s, v["error"]["code"].as_str()), (422, Some(code)), "{v}");
        }
        assert_eq!(
            op.post("/v1.0/canned_responses", json!({"short_code": "max", "content": "x".repeat(4096)})).await.0,
            201
        );

        let path = format!("/v1.0/canned_responses/{}", thanks["id"].as_str().unwrap());
        let (s, v) = agent.call(reqwest::Method::PATCH, &path, Some(json!({"short_code": "hello"}))).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("short_code_taken")), "{v}");
        let (s, v) =
            agent.call(reqwest::Method::PATCH, &path, Some(json!({"short_code": "ty", "content": "Thanks!"}))).await;
        assert_eq!((s, v["short_code"].as_str(), v["content"].as_str()), (200, Some("ty"), Some("Thanks!")), "{v}");
        assert_eq!(
            op.post("/v1.0/canned_responses", json!({"short_code": "thanks", "content": "reused"})).await.0,
            201,
            "the old code is free again"
        );
        assert_eq!(agent.get(&path).await.1["short_code"], "ty");

        // Another tenant sees and touches nothing; end-user tokens get nothing.
        let other = srv.api(KEY_B);
        assert!(codes(&other.get("/v1.0/canned_responses").await.1).is_empty());
        assert_eq!(other.get(&path).await.0, 404);
        assert_eq!(other.delete(&path).await.0, 404);
        assert_eq!(
            other.post("/v1.0/canned_responses", json!({"short_code": "ty", "content": "b's own"})).await.0,
            201,
            "codes are per tenant"
        );
        let c = op.conversation("room").await;
        op.webchat(&c, "carol").await;
        let carol = srv.api(&op.token("carol", &[&c]).await);
        assert_eq!(carol.get("/v1.0/canned_responses").await.0, 403);

        let (s, v) = agent.delete(&path).await;
        assert_eq!((s, v["short_code"].as_str()), (200, Some("ty")));
        assert_eq!(agent.get(&path).await.0, 404);
        assert_eq!(op.post("/v1.0/canned_responses", json!({"short_code": "ty", "content": "new"})).await.0, 201);
        srv.stop().await;
    }
}

async fn state_of(api: &common::Api, c: &str) -> (u64, u64) {
    let (s, v) = api.get(&format!("/v1.0/conversations/{c}")).await;
    assert_eq!(s, 200, "{v}");
    (v["last_read_seq"].as_u64().unwrap(), v["unread_count"].as_u64().unwrap())
}

#[tokio::test]
async fn read_state_lives_on_the_server_per_agent() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let first = signed_up(&srv, KEY_A, "ann@example.com", "agent").await;
        let (_, second) = sign_in(&srv, "ann@example.com", PASSWORD).await;
        let (a1, a2) = (srv.api(first["token"].as_str().unwrap()), srv.api(second["token"].as_str().unwrap()));
        let c = op.conversation("customer").await;
        let pid = op.webchat(&c, "carol").await;
        for text in ["one", "two", "three"] {
            let (s, v) = op
                .post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": text, "author_participant_id": pid}))
                .await;
            assert_eq!(s, 201, "{v}");
        }
        let (_, page) = a1.get("/v1.0/conversations").await;
        assert_eq!(
            (page["result"][0]["last_read_seq"].as_u64(), page["result"][0]["unread_count"].as_u64()),
            (Some(0), Some(3)),
            "{backend:?}: {page}"
        );
        assert!(
            op.get("/v1.0/conversations").await.1["result"][0].get("unread_count").is_none(),
            "API keys have no read state"
        );

        // REST marks; the other sign-in sees it; a marker never moves back.
        let (s, v) = a1.post(&format!("/v1.0/conversations/{c}/read"), json!({"seq": 2})).await;
        assert_eq!((s, v["last_read_seq"].as_u64(), v["unread_count"].as_u64()), (200, Some(2), Some(1)), "{v}");
        assert_eq!(state_of(&a2, &c).await, (2, 1), "the same in a second sign-in");
        a2.post(&format!("/v1.0/conversations/{c}/read"), json!({"seq": 1})).await;
        assert_eq!(state_of(&a1, &c).await, (2, 1));

        // The WebSocket read frame of the second sign-in moves the same marker.
        let mut ws = srv.ws(second["token"].as_str().unwrap()).await;
        ws.subscribe(&c, None).await;
        ws.send(json!({"type": "read", "conversation_id": c, "seq": 3})).await;
        eventually(|| async { (state_of(&a1, &c).await == (3, 0)).then_some(()) }).await;

        // A new message from the customer is unread; the agent's own reply is not.
        op.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "four", "author_participant_id": pid}))
            .await;
        assert_eq!(state_of(&a1, &c).await, (3, 1));
        ws.send(json!({"type": "send", "conversation_id": c, "text": "on it", "client_id": "r1"})).await;
        ws.next_of("ack").await;
        assert_eq!(state_of(&a2, &c).await, (5, 0), "writing reads the room");
        let (s, v) = a1.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "and REST"})).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(state_of(&a2, &c).await, (6, 0));
        let (s, v) = a1.post(&format!("/v1.0/conversations/{c}/read"), json!({"seq": 999})).await;
        assert_eq!((s, v["last_read_seq"].as_u64()), (200, Some(6)), "a marker stops at the newest message");

        // Another agent has its own marker; another tenant sees nothing; API keys have none.
        let ben = signed_up(&srv, KEY_A, "ben@example.com", "agent").await;
        assert_eq!(state_of(&srv.api(ben["token"].as_str().unwrap()), &c).await, (0, 6));
        let b_agent = signed_up(&srv, KEY_B, "eve@example.com", "agent").await;
        let eve = srv.api(b_agent["token"].as_str().unwrap());
        assert_eq!(eve.post(&format!("/v1.0/conversations/{c}/read"), json!({"seq": 1})).await.0, 404);
        assert_eq!(eve.get(&format!("/v1.0/conversations/{c}")).await.0, 404);
        assert_eq!(op.post(&format!("/v1.0/conversations/{c}/read"), json!({"seq": 1})).await.0, 403);
        srv.stop().await;
    }
}

#[tokio::test]
async fn an_end_user_reads_names_but_no_addresses() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let session = signed_up(&srv, KEY_A, "ann@example.com", "agent").await;
        let c = op.conversation("Order #42").await;
        op.put(&format!("/v1.0/conversations/{c}"), json!({"owner_id": "ann", "metadata": {"internal": "vip"}})).await;
        op.webchat(&c, "carol").await;
        let (s, v) = op
            .post(
                &format!("/v1.0/conversations/{c}/participants"),
                json!({"address": {"type": "webchat", "target": "dave-secret-id", "name": "Dave"}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let agent = srv.api(session["token"].as_str().unwrap());
        agent.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "hello"})).await;

        let carol = srv.api(&op.token("carol", &[&c]).await);
        let (s, conv) = carol.get(&format!("/v1.0/conversations/{c}")).await;
        assert_eq!(s, 200, "{backend:?}: {conv}");
        assert_eq!((conv["name"].as_str(), conv["owner_id"].as_str()), (Some("Order #42"), Some("ann")));
        assert_eq!(conv["metadata"], json!({}), "not the operator's own data");
        let (s, list) = carol.get(&format!("/v1.0/conversations/{c}/participants")).await;
        assert_eq!(s, 200, "{list}");
        let named =
            |n: &str| list["result"].as_array().unwrap().iter().find(|p| p["address"]["name"] == n).unwrap().clone();
        let ann = named("Agent ann@example.com");
        assert_eq!(
            (ann["address"]["type"].as_str(), ann["address"]["target"].as_str()),
            (Some("agent"), Some("ann")),
            "agents are named after their account"
        );
        assert_eq!(named("carol")["address"]["target"], "carol", "its own address");
        assert!(named("carol")["contact_id"].is_string());
        assert_eq!(named("Dave")["address"]["target"], "", "no one else's address");
        assert!(named("Dave")["contact_id"].is_null());
        assert!(!list.to_string().contains("dave-secret-id"));
        // Not a conversation the token names: nothing.
        let other = op.conversation("other").await;
        assert_eq!(carol.get(&format!("/v1.0/conversations/{other}")).await.0, 403);
        assert_eq!(carol.get(&format!("/v1.0/conversations/{other}/participants")).await.0, 403);
        assert_eq!(carol.get("/v1.0/conversations").await.0, 403, "no list for end users");
        srv.stop().await;
    }
}
