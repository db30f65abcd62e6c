//! Agent assignment on both backends: who may read and act on which conversation (agent
//! tokens vs API keys), assigning and unassigning, the owner filter with paging, the live
//! `assigned` frame, and round-robin auto-assignment among connected agents.

use crate::common;
use crate::common::stub::eventually;
use crate::common::{Api, BACKENDS, Backend, KEY_A, KEY_B, TestServer};
use serde_json::{Value, json};
use switchboard::channels::twilio::signature;

const TWILIO_TOKEN: &str = "twilio-auth-token-0123456789";

async fn agent_token(api: &Api, identity: &str) -> String {
    let (s, v) = api.post("/v1.0/tokens", json!({"identity": identity, "role": "agent"})).await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// A REST client that authenticates with an agent token instead of an API key.
fn as_agent(srv: &TestServer, token: &str) -> Api {
    srv.api(token)
}

async fn assign(api: &Api, c: &str, owner: &str) -> Value {
    let (s, v) = api.put(&format!("/v1.0/conversations/{c}"), json!({"owner_type": "agent", "owner_id": owner})).await;
    assert_eq!(s, 200, "{v}");
    v
}

fn ids(page: &Value) -> Vec<String> {
    page["result"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

async fn listed(api: &Api, query: &str) -> Vec<String> {
    let (s, v) = api.get(&format!("/v1.0/conversations{query}")).await;
    assert_eq!(s, 200, "{v}");
    ids(&v)
}

#[tokio::test]
async fn agents_read_only_their_own_and_unassigned_conversations() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let (free, mine, theirs) =
            (op.conversation("free").await, op.conversation("mine").await, op.conversation("theirs").await);
        let v = assign(&op, &mine, "ann").await;
        assert_eq!((v["owner_type"].as_str(), v["owner_id"].as_str()), (Some("agent"), Some("ann")));
        assign(&op, &theirs, "ben").await;
        op.post(&format!("/v1.0/conversations/{theirs}/messages"), json!({"text": "secret"})).await;
        let ann = as_agent(&srv, &agent_token(&op, "ann").await);
        let ben = as_agent(&srv, &agent_token(&op, "ben").await);

        assert_eq!(listed(&ann, "").await, [mine.clone(), free.clone()], "{backend:?}: own + unassigned, newest first");
        assert_eq!(listed(&ben, "").await, [theirs.clone(), free.clone()]);
        assert_eq!(listed(&op, "").await, [theirs.clone(), mine.clone(), free.clone()], "operators see all");
        assert_eq!(listed(&ann, "?owner_id=ann").await, [mine.as_str()]);
        assert_eq!(listed(&ann, "?owner_id=none").await, [free.as_str()]);
        assert_eq!(ann.get("/v1.0/conversations?owner_id=ben").await.0, 403, "no peeking at a colleague's list");

        for path in ["", "/messages", "/participants"] {
            assert_eq!(ann.get(&format!("/v1.0/conversations/{theirs}{path}")).await.0, 403, "{path}");
            assert_eq!(ben.get(&format!("/v1.0/conversations/{theirs}{path}")).await.0, 200, "{path}");
            assert_eq!(ann.get(&format!("/v1.0/conversations/{free}{path}")).await.0, 200, "{path}");
        }
        let msg = ben.get(&format!("/v1.0/conversations/{theirs}/messages")).await.1["result"][0]["id"].clone();
        let one = format!("/v1.0/conversations/{theirs}/messages/{}", msg.as_str().unwrap());
        assert_eq!((ann.get(&one).await.0, ben.get(&one).await.0), (403, 200));

        // Agent tokens read; they change no more than status and owner (of their own and
        // unassigned conversations), and other tenants see nothing.
        assert_eq!(ann.post("/v1.0/conversations", json!({"name": "x"})).await.0, 403);
        assert_eq!(ann.put(&format!("/v1.0/conversations/{free}"), json!({"name": "x"})).await.0, 403);
        assert_eq!(ann.put(&format!("/v1.0/conversations/{theirs}"), json!({"owner_id": "ann"})).await.0, 403);
        assert_eq!(srv.api(KEY_B).get(&format!("/v1.0/conversations/{mine}")).await.0, 404);
        let other = as_agent(&srv, &agent_token(&srv.api(KEY_B), "ann").await);
        assert!(listed(&other, "").await.is_empty());
        assert_eq!(other.get(&format!("/v1.0/conversations/{free}")).await.0, 404);
        // A webchat user's token is no REST credential.
        op.webchat(&free, "wu").await;
        let user = srv.api(&op.token("wu", &[&free]).await);
        assert_eq!(user.get("/v1.0/conversations").await.0, 403);
        let (s, e) =
            op.post("/v1.0/tokens", json!({"identity": "ann", "role": "agent", "conversation_ids": [free]})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_scope")));
        let (s, e) = op.post("/v1.0/tokens", json!({"identity": "ann", "role": "boss"})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_role")));
        srv.stop().await;
    }
}

#[tokio::test]
async fn unassign_and_put_null_clear_the_owner_and_emit_events() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let c = op.conversation("help").await;
        let mut events = srv.state.broker.events();
        assign(&op, &c, "ann").await;
        let (s, v) = op.post(&format!("/v1.0/conversations/{c}/unassign"), json!({})).await;
        assert_eq!((s, &v["owner_type"], &v["owner_id"]), (200, &Value::Null, &Value::Null), "{backend:?} {v}");
        assign(&op, &c, "ben").await;
        let (s, v) = op.put(&format!("/v1.0/conversations/{c}"), json!({"owner_id": null})).await;
        assert_eq!((s, &v["owner_id"]), (200, &Value::Null));
        let (_, v) = op.put(&format!("/v1.0/conversations/{c}"), json!({"owner_id": "cat", "name": "renamed"})).await;
        assert_eq!((v["owner_id"].as_str(), v["name"].as_str()), (Some("cat"), Some("renamed")));
        assert_eq!(op.get(&format!("/v1.0/conversations/{c}")).await.1["owner_id"], "cat");

        let mut owners = Vec::new();
        while owners.len() < 6 {
            let e = tokio::time::timeout(common::WAIT, events.recv()).await.expect("event").unwrap();
            if e.kind == switchboard::wire::EventKind::ConversationUpdated {
                owners.push(e.data.value()["owner_id"].as_str().map(str::to_string));
            }
        }
        let s = |x: &str| Some(x.to_string());
        // The combined PUT is two updates: the rename, then the assignment.
        assert_eq!(owners, [s("ann"), None, s("ben"), None, None, s("cat")]);

        for (body, code) in [
            (json!({"owner_type": "team", "owner_id": "x"}), "invalid_owner"),
            (json!({"owner_type": "agent"}), "invalid_owner"),
            (json!({"owner_id": "  "}), "invalid_owner"),
        ] {
            let (s, e) = op.put(&format!("/v1.0/conversations/{c}"), body).await;
            assert_eq!((s, e["error"]["code"].as_str()), (422, Some(code)));
        }
        let unknown = uuid::Uuid::now_v7();
        assert_eq!(op.post(&format!("/v1.0/conversations/{unknown}/unassign"), json!({})).await.0, 404);
        srv.stop().await;
    }
}

#[tokio::test]
async fn owner_filter_pages_through_exactly_the_owned_conversations() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let mut ann = Vec::new();
        let mut free = Vec::new();
        for i in 0..9 {
            let c = op.conversation(&format!("c{i}")).await;
            if i % 3 == 2 {
                free.push(c);
            } else {
                assign(&op, &c, "ann").await;
                ann.push(c);
            }
        }
        ann.reverse();
        free.reverse();
        let pages = |q: &'static str| {
            let op = op.clone();
            async move {
                let (mut all, mut token, mut sizes) = (Vec::new(), None::<String>, Vec::new());
                loop {
                    let t = token.as_ref().map(|t| format!("&page_token={t}")).unwrap_or_default();
                    let (s, v) = op.get(&format!("/v1.0/conversations?page_size=2&{q}{t}")).await;
                    assert_eq!(s, 200, "{v}");
                    sizes.push(v["result"].as_array().unwrap().len());
                    all.extend(ids(&v));
                    match v["next_page_token"].as_str() {
                        Some(t) => token = Some(t.to_string()),
                        None => return (all, sizes),
                    }
                }
            }
        };
        assert_eq!(pages("owner_id=ann").await, (ann.clone(), vec![2, 2, 2]), "{backend:?}");
        assert_eq!(pages("owner_id=none").await, (free.clone(), vec![2, 1]));
        assert_eq!(pages("owner_id=nobody").await, (vec![], vec![0]));
        // Reassigning moves a conversation between the lists.
        assign(&op, &ann[0], "ben").await;
        op.post(&format!("/v1.0/conversations/{}/unassign", ann[1]), json!({})).await;
        assert_eq!(pages("owner_id=ann").await.0, ann[2..].to_vec());
        assert_eq!(pages("owner_id=ben").await.0, vec![ann[0].clone()]);
        let mut unassigned = vec![ann[1].clone()];
        unassigned.extend(free.iter().cloned());
        unassigned.sort_by(|a, b| b.cmp(a));
        assert_eq!(pages("owner_id=none").await.0, unassigned);
        // An agent's default view pages through its own and the unassigned ones, merged.
        let ben = as_agent(&srv, &agent_token(&op, "ben").await);
        let (_, v) = ben.get("/v1.0/conversations?page_size=3").await;
        let mut want = unassigned.clone();
        want.push(ann[0].clone());
        want.sort_by(|a, b| b.cmp(a));
        let (_, v2) = ben
            .get(&format!("/v1.0/conversations?page_size=3&page_token={}", v["next_page_token"].as_str().unwrap()))
            .await;
        assert_eq!([ids(&v), ids(&v2)].concat(), want);
        // Deleting removes it from its owner's list.
        op.delete(&format!("/v1.0/conversations/{}", ann[0])).await;
        assert!(pages("owner_id=ben").await.0.is_empty());
        srv.stop().await;
    }
}

#[tokio::test]
async fn assignment_is_announced_in_the_room_and_limits_what_agents_do_live() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let (c, taken) = (op.conversation("live").await, op.conversation("taken").await);
        assign(&op, &taken, "ben").await;
        let (_, sup) = op.post("/v1.0/tokens", json!({"identity": "sup", "all_conversations": true})).await;
        let mut watcher = srv.ws(sup["token"].as_str().unwrap()).await;
        watcher.subscribe(&c, None).await;
        let mut ann = srv.ws(&agent_token(&op, "ann").await).await;
        ann.subscribe(&c, None).await;
        ann.send(json!({"type": "subscribe", "conversation_id": taken})).await;
        let e = ann.next_real().await;
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("forbidden")), "{backend:?} {e}");

        ann.send(json!({"type": "send", "conversation_id": c, "text": "I'll take this", "client_id": "a1"})).await;
        ann.next_of("ack").await;
        let (_, parts) = op.get(&format!("/v1.0/conversations/{c}/participants")).await;
        assert_eq!(parts["result"][0]["address"], json!({"type": "agent", "target": "ann", "name": ""}));

        assign(&op, &c, "ann").await;
        let want = json!({"type": "assigned", "conversation_id": c, "owner_type": "agent", "owner_id": "ann"});
        for ws in [&mut watcher, &mut ann] {
            loop {
                let f = ws.next_real().await;
                if f["type"] == "assigned" {
                    assert_eq!(f, want);
                    break;
                }
                assert_eq!(f["type"], "message", "{f}");
            }
        }
        // Given to someone else: ann is told, and can no longer write there.
        assign(&op, &c, "ben").await;
        assert_eq!(ann.next_real().await["owner_id"], "ben");
        let gone = json!({"type": "unsubscribed", "conversation_id": c, "reason": "reassigned"});
        assert_eq!(ann.next_real().await, gone);
        ann.send(json!({"type": "send", "conversation_id": c, "text": "still mine?", "client_id": "a2"})).await;
        let e = ann.next_real().await;
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str(), e["client_id"].as_str()),
            (Some("error"), Some("forbidden"), Some("a2"))
        );
        op.post(&format!("/v1.0/conversations/{c}/unassign"), json!({})).await;
        let f = watcher.next_real().await;
        let f = if f["type"] == "assigned" && f["owner_id"] == "ben" { watcher.next_real().await } else { f };
        assert_eq!(f, json!({"type": "assigned", "conversation_id": c, "owner_type": null, "owner_id": null}));
        srv.stop().await;
    }
}

async fn sms(srv: &TestServer, account: &str, from: &str, sid: &str) {
    let url = srv.url(&format!("/v1.0/hooks/twilio/{account}"));
    let form = format!("MessageSid={sid}&From={}&To=%2B15005550006&Body=help", from.replace('+', "%2B"));
    let params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes()).into_owned().collect();
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature(TWILIO_TOKEN, &url, &params))
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The owner of the conversation opened by `from`'s first SMS.
async fn owner_of(op: &Api, from: &str) -> Option<String> {
    let (_, v) = op.get("/v1.0/conversations?page_size=100").await;
    let c = v["result"].as_array().unwrap().iter().find(|c| c["name"] == from).cloned().expect("room for sender");
    c["owner_id"].as_str().map(str::to_string)
}

async fn auto_assignment_on(backend: Backend) {
    let mut config = common::test_config();
    config.assignment.auto = true;
    let srv = TestServer::start_on(backend, config).await;
    let op = srv.api(KEY_A);
    let (s, a) = op
        .post(
            "/v1.0/conversation_accounts",
            json!({"type": "tel", "provider": "twilio", "address": "+15005550006",
                   "credentials": {"account_sid": "AC0", "auth_token": TWILIO_TOKEN}}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let acc = a["id"].as_str().unwrap().to_string();
    let tenant = srv.state.config.tenants[0].tenant_id();
    let available = |want: &'static [&'static str]| {
        let state = srv.state.clone();
        eventually(move || {
            let state = state.clone();
            async move { (state.agents.available(tenant).await.unwrap() == want).then_some(()) }
        })
    };

    sms(&srv, &acc, "+14155550100", "SM0").await;
    assert_eq!(owner_of(&op, "+14155550100").await, None, "{backend:?}: nobody online, stays unassigned");

    let mut sockets = Vec::new();
    for who in ["cat", "ann", "ben"] {
        sockets.push((who, srv.ws(&agent_token(&op, who).await).await));
    }
    // A second connection of the same agent does not give it a second turn.
    let extra = srv.ws(&agent_token(&op, "ann").await).await;
    available(&["ann", "ben", "cat"]).await;
    for (i, want) in ["ann", "ben", "cat", "ann"].iter().enumerate() {
        let from = format!("+1415555020{i}");
        sms(&srv, &acc, &from, &format!("SMa{i}")).await;
        assert_eq!(owner_of(&op, &from).await.as_deref(), Some(*want), "{backend:?} room {i}");
    }
    // An existing room is not reassigned by new messages.
    sms(&srv, &acc, "+14155550200", "SMb0").await;
    assert_eq!(owner_of(&op, "+14155550200").await.as_deref(), Some("ann"));

    // ben goes offline: the turn after ann skips him.
    let (_, ben) = sockets.remove(2);
    drop(ben);
    eventually(|| async { (srv.state.agents.available(tenant).await.unwrap() == ["ann", "cat"]).then_some(()) }).await;
    sms(&srv, &acc, "+14155550300", "SMc0").await;
    assert_eq!(owner_of(&op, "+14155550300").await.as_deref(), Some("cat"));
    sms(&srv, &acc, "+14155550301", "SMc1").await;
    assert_eq!(owner_of(&op, "+14155550301").await.as_deref(), Some("ann"));
    drop((sockets, extra));
    srv.stop().await;
}

#[tokio::test]
async fn auto_assignment_is_round_robin_among_connected_agents() {
    for backend in BACKENDS {
        auto_assignment_on(backend).await;
    }
}

#[tokio::test]
async fn racing_assignments_leave_the_owner_lists_consistent() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let c = op.conversation("contested").await;
        let agents = ["a0", "a1", "a2", "a3", "a4"];
        let calls = (0..25).map(|i| {
            let (op, c) = (op.clone(), c.clone());
            async move { assign(&op, &c, agents[i % agents.len()]).await }
        });
        futures_util::future::join_all(calls).await;
        let owner = op.get(&format!("/v1.0/conversations/{c}")).await.1["owner_id"].as_str().unwrap().to_string();
        for a in agents {
            let listed = listed(&op, &format!("?owner_id={a}")).await;
            assert_eq!(listed.contains(&c), a == owner, "{backend:?}: {a}'s list vs owner {owner}");
        }
        assert!(listed(&op, "?owner_id=none").await.is_empty());
        srv.stop().await;
    }
}
