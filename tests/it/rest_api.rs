//! REST API against the real server: CRUD, pagination, errors, auth and tenant isolation.

use crate::common;
use crate::common::{KEY_A, KEY_B, TestServer};
use serde_json::{Value, json};

#[tokio::test]
async fn conversation_crud_round_trip() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let (s, c) = api.post("/v1.0/conversations", json!({"name": "support", "detail": "d", "metadata": {"k": 1}})).await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["name"], "support");
    assert_eq!(c["metadata"], json!({"k": 1}));
    assert_eq!(c["last_seq"], 0);

    let (s, got) = api.get(&format!("/v1.0/conversations/{id}")).await;
    assert_eq!((s, &got), (200, &c));

    let (s, up) = api.put(&format!("/v1.0/conversations/{id}"), json!({"name": "renamed"})).await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["name"], "renamed");
    assert_eq!(up["detail"], "d", "absent fields keep their value");

    let (s, _) = api.delete(&format!("/v1.0/conversations/{id}")).await;
    assert_eq!(s, 200);
    let (s, e) = api.get(&format!("/v1.0/conversations/{id}")).await;
    assert_eq!(s, 404);
    assert_eq!(e["error"]["code"], "not_found");
    let (s, _) = api.delete(&format!("/v1.0/conversations/{id}")).await;
    assert_eq!(s, 404);
    srv.stop().await;
}

#[tokio::test]
async fn conversation_list_pages_newest_first_and_is_stable_under_inserts() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(api.conversation(&format!("c{i}")).await);
    }
    ids.reverse(); // newest first
    let (s, p1) = api.get("/v1.0/conversations?page_size=3").await;
    assert_eq!(s, 200);
    let page_ids = |p: &Value| {
        p["result"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(page_ids(&p1), ids[0..3]);
    let token = p1["next_page_token"].as_str().unwrap().to_string();

    // Rows created between pages must not shift the next page.
    api.conversation("late").await;
    let (_, p2) = api.get(&format!("/v1.0/conversations?page_size=3&page_token={token}")).await;
    assert_eq!(page_ids(&p2), ids[3..6]);
    let token = p2["next_page_token"].as_str().unwrap();
    let (_, p3) = api.get(&format!("/v1.0/conversations?page_size=3&page_token={token}")).await;
    assert_eq!(page_ids(&p3), ids[6..7]);
    assert!(p3.get("next_page_token").is_none(), "last page has no token: {p3}");

    for bad in ["page_size=0", "page_size=101", "page_token=zzz", "page_size=abc", "bogus=1"] {
        let (s, e) = api.get(&format!("/v1.0/conversations?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn participants_add_list_remove_and_conflict() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("p").await;
    let path = format!("/v1.0/conversations/{c}/participants");
    let alice = api.webchat(&c, "alice").await;
    let (s, e) = api.post(&path, json!({"address": {"type": "webchat", "target": "alice"}})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("conflict")));
    api.webchat(&c, "bob").await;
    let (_, list) = api.get(&path).await;
    let targets: Vec<&str> =
        list["result"].as_array().unwrap().iter().map(|p| p["address"]["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["alice", "bob"]);
    let (s, removed) = api.delete(&format!("{path}/{alice}")).await;
    assert_eq!((s, removed["address"]["target"].as_str()), (200, Some("alice")));
    let (s, _) = api.delete(&format!("{path}/{alice}")).await;
    assert_eq!(s, 404);

    let (s, e) = api.post(&path, json!({"address": {"type": "webchat", "target": "  "}})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_address")));
    let (s, _) = api.post(&path, json!({"address": {"type": "carrier-pigeon", "target": "x"}})).await;
    assert_eq!(s, 400);
    let (s, e) = api.post(&path, json!({"address": {"type": "tel", "target": "+15550100"}})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("account_required")));
    let (s, e) = api
        .post(&path, json!({"address": {"type": "tel", "target": "+15550100"}, "account_id": uuid::Uuid::now_v7()}))
        .await;
    // An account_id naming nothing is bad input (422), not a missing conversation (404).
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_account")), "unknown account");
    srv.stop().await;
}

#[tokio::test]
async fn messages_post_get_and_page_by_seq() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("m").await;
    let path = format!("/v1.0/conversations/{c}/messages");
    for i in 1..=5 {
        let (s, m) = api.post(&path, json!({"text": format!("hello {i}")})).await;
        assert_eq!(s, 201, "{m}");
        assert_eq!(m["seq"], i);
        assert_eq!(m["direction"], "outbound");
        assert_eq!(m["status"], "sent");
    }
    let seqs =
        |p: &Value| p["result"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect::<Vec<_>>();
    let (_, latest) = api.get(&format!("{path}?page_size=2")).await;
    assert_eq!((seqs(&latest), latest["has_more"].as_bool()), (vec![4, 5], Some(true)));
    let (_, older) = api.get(&format!("{path}?page_size=2&before=4")).await;
    assert_eq!(seqs(&older), vec![2, 3]);
    let (_, oldest) = api.get(&format!("{path}?page_size=2&before=2")).await;
    assert_eq!((seqs(&oldest), oldest["has_more"].as_bool()), (vec![1], Some(false)));
    let (_, fwd) = api.get(&format!("{path}?after=3")).await;
    assert_eq!((seqs(&fwd), fwd["has_more"].as_bool()), (vec![4, 5], Some(false)));

    let id = latest["result"][1]["id"].as_str().unwrap();
    let (s, one) = api.get(&format!("{path}/{id}")).await;
    assert_eq!((s, one["text"].as_str()), (200, Some("hello 5")));
    let (_, conv) = api.get(&format!("/v1.0/conversations/{c}")).await;
    assert_eq!(conv["last_seq"], 5);

    // Authored by a participant.
    let pid = api.webchat(&c, "alice").await;
    let (s, m) = api.post(&path, json!({"text": "as alice", "author_participant_id": pid})).await;
    assert_eq!((s, m["author"].as_str(), m["direction"].as_str()), (201, Some(pid.as_str()), Some("inbound")));
    let (s, e) = api.post(&path, json!({"text": "x", "author_participant_id": uuid::Uuid::now_v7()})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("unknown_author")));
    srv.stop().await;
}

#[tokio::test]
async fn duplicate_client_id_gives_one_message() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("idem").await;
    let path = format!("/v1.0/conversations/{c}/messages");
    let (s1, m1) = api.post(&path, json!({"text": "once", "client_id": "retry-1"})).await;
    let (s2, m2) = api.post(&path, json!({"text": "once", "client_id": "retry-1"})).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(m1["id"], m2["id"]);
    let (_, all) = api.get(&path).await;
    assert_eq!(all["result"].as_array().unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_never_5xx() {
    let mut cfg = common::test_config();
    cfg.limits.max_body_bytes = 4096;
    cfg.limits.max_text_bytes = 100;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let c = api.conversation("bad").await;
    let msgs = format!("{}/v1.0/conversations/{c}/messages", api.base);
    let raw = |body: &'static str| {
        api.client.post(&msgs).bearer_auth(KEY_A).header("content-type", "application/json").body(body).send()
    };
    let r = raw("{not json").await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "bad_json");
    let r = raw(r#"{"text": 5}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = raw(r#"{"text": "x", "surprise": true}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = api.client.post(&msgs).bearer_auth(KEY_A).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 400, "missing content type");

    let big = "x".repeat(8192);
    let r = api.client.post(&msgs).bearer_auth(KEY_A).json(&json!({"text": big})).send().await.unwrap();
    assert_eq!(r.status(), 413, "body over max_body_bytes");
    let path = format!("/v1.0/conversations/{c}/messages");
    let (s, e) = api.post(&path, json!({"text": "y".repeat(101)})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (413, Some("payload_too_large")));
    let (s, e) = api.post(&path, json!({"text": "   "})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("empty_message")));
    let (s, e) = api.post(&path, json!({"medias": [{"url": "javascript:alert(1)"}]})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_media")));
    let (s, e) = api.post(&path, json!({"text": "z", "client_id": ""})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_client_id")));
    let (s, _) = api.post("/v1.0/conversations", json!({"metadata": [1, 2]})).await;
    assert_eq!(s, 422);
    let (s, _) = api.get("/v1.0/conversations/not-a-uuid").await;
    assert_eq!(s, 404);
    let (s, e) = api.get("/v1.0/no-such-route").await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    srv.stop().await;
}

#[tokio::test]
async fn auth_is_required_and_tenants_are_isolated_on_every_route() {
    let srv = TestServer::start().await;
    let a = srv.api(KEY_A);
    let b = srv.api(KEY_B);
    let c = a.conversation("a-only").await;
    let p = a.webchat(&c, "alice").await;
    let (_, m) = a.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "secret"})).await;
    let mid = m["id"].as_str().unwrap();

    let routes: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (reqwest::Method::GET, format!("/v1.0/conversations/{c}"), None),
        (reqwest::Method::PUT, format!("/v1.0/conversations/{c}"), Some(json!({"name": "x"}))),
        (reqwest::Method::GET, format!("/v1.0/conversations/{c}/participants"), None),
        (
            reqwest::Method::POST,
            format!("/v1.0/conversations/{c}/participants"),
            Some(json!({"address": {"type": "webchat", "target": "eve"}})),
        ),
        (reqwest::Method::DELETE, format!("/v1.0/conversations/{c}/participants/{p}"), None),
        (reqwest::Method::GET, format!("/v1.0/conversations/{c}/messages"), None),
        (reqwest::Method::POST, format!("/v1.0/conversations/{c}/messages"), Some(json!({"text": "intrude"}))),
        (reqwest::Method::GET, format!("/v1.0/conversations/{c}/messages/{mid}"), None),
        (reqwest::Method::DELETE, format!("/v1.0/conversations/{c}"), None),
    ];
    for (method, path, body) in &routes {
        let (s, e) = b.call(method.clone(), path, body.clone()).await;
        assert_eq!(s, 404, "tenant b on {method} {path}: {e}");
        let mut anon = srv.api("");
        anon.key = "sk_unknown_key_000000000000".into();
        let (s, e) = anon.call(method.clone(), path, body.clone()).await;
        assert_eq!((s, e["error"]["code"].as_str()), (401, Some("unauthorized")), "{method} {path}");
    }
    let r = reqwest::Client::new().get(srv.url("/v1.0/conversations")).send().await.unwrap();
    assert_eq!(r.status(), 401, "no Authorization header");
    let (s, list) = b.get("/v1.0/conversations").await;
    assert_eq!((s, list["result"].as_array().unwrap().len()), (200, 0));
    let (s, e) = b.post("/v1.0/tokens", json!({"identity": "alice", "conversation_ids": [c]})).await;
    assert_eq!(s, 404, "tenant b cannot mint a token for a's conversation: {e}");
    // Nothing b did changed a's data.
    let (_, still) = a.get(&format!("/v1.0/conversations/{c}/messages")).await;
    assert_eq!(still["result"].as_array().unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn tokens_are_scoped_to_participants() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("t").await;
    api.webchat(&c, "alice").await;
    let (s, t) = api.post("/v1.0/tokens", json!({"identity": "alice", "conversation_ids": [c], "ttl": 60})).await;
    assert_eq!(s, 201, "{t}");
    assert!(t["token"].as_str().unwrap().split('.').count() == 3);
    let (s, e) = api.post("/v1.0/tokens", json!({"identity": "mallory", "conversation_ids": [c]})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("not_participant")));
    let (s, e) = api.post("/v1.0/tokens", json!({"identity": "alice"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_scope")));
    let (s, e) =
        api.post("/v1.0/tokens", json!({"identity": "alice", "conversation_ids": [c], "ttl": 999999999})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_ttl")));
    let (s, _) = api.post("/v1.0/tokens", json!({"identity": "ops", "all_conversations": true})).await;
    assert_eq!(s, 201);
    srv.stop().await;
}

#[tokio::test]
async fn openapi_health_and_static_page() {
    let srv = TestServer::start().await;
    let http = reqwest::Client::new();
    let doc: Value = http.get(srv.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1.0/conversations",
        "/v1.0/conversations/{id}",
        "/v1.0/conversations/{id}/participants",
        "/v1.0/conversations/{id}/participants/{participant_id}",
        "/v1.0/conversations/{id}/messages",
        "/v1.0/conversations/{id}/messages/{message_id}",
        "/v1.0/tokens",
    ] {
        assert!(paths.contains_key(p), "openapi lacks {p}");
    }
    for s in ["Conversation", "Participant", "Message", "Address", "ErrorBody"] {
        assert!(doc["components"]["schemas"].get(s).is_some(), "openapi lacks schema {s}");
    }
    assert_eq!(http.get(srv.url("/healthz")).send().await.unwrap().status(), 200);
    let ready: Value = http.get(srv.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let page = http.get(srv.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Switchboard"));
    srv.stop().await;
}

/// A browser holding a client token reads the history of its own conversations over REST
/// (paging back like an operator's page), exactly where its WebSocket may subscribe — and
/// nothing else: no other conversation, no lists, no participants, no writes, not after it was
/// removed from the room.
#[tokio::test]
async fn client_tokens_read_their_own_conversations_messages_only() {
    common::on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let api = srv.api(KEY_A);
        let c = api.conversation("mine").await;
        let d = api.conversation("not mine").await;
        let alice_id = api.webchat(&c, "alice").await;
        for i in 0..3 {
            let (s, _) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": format!("m{i}")})).await;
            assert_eq!(s, 201);
        }
        let alice = srv.api(&api.token("alice", &[&c]).await);
        let (s, page) = alice.get(&format!("/v1.0/conversations/{c}/messages?page_size=2")).await;
        assert_eq!(s, 200, "{backend:?}: {page}");
        let texts: Vec<&str> = page["result"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
        assert_eq!((texts, &page["has_more"]), (vec!["m1", "m2"], &json!(true)), "newest page first");
        let (s, older) = alice.get(&format!("/v1.0/conversations/{c}/messages?before=2")).await;
        assert_eq!((s, older["result"][0]["text"].as_str()), (200, Some("m0")));
        let id = page["result"][0]["id"].as_str().unwrap();
        assert_eq!(alice.get(&format!("/v1.0/conversations/{c}/messages/{id}")).await.0, 200);

        // Its own conversation and participants it may read (names, not others' addresses:
        // see agent_inbox); nothing else.
        assert_eq!(alice.get(&format!("/v1.0/conversations/{c}")).await.1["name"], "mine");
        assert_eq!(alice.get(&format!("/v1.0/conversations/{c}/participants")).await.0, 200);
        for path in [
            format!("/v1.0/conversations/{d}/messages"),
            "/v1.0/conversations".to_string(),
            format!("/v1.0/conversations/{d}"),
            format!("/v1.0/conversations/{d}/participants"),
        ] {
            let (s, e) = alice.get(&path).await;
            assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")), "{backend:?} {path}");
        }
        let (s, e) = alice.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "over REST"})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")), "writes need an API key");
        assert_eq!(api.delete(&format!("/v1.0/conversations/{c}/participants/{alice_id}")).await.0, 200);
        let (s, e) = alice.get(&format!("/v1.0/conversations/{c}/messages")).await;
        assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")), "removed from the room");
        assert_eq!(alice.get(&format!("/v1.0/conversations/{c}")).await.0, 403, "removed from the room");
        srv.stop().await;
    })
    .await;
}
