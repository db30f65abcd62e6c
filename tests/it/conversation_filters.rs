//! Finding conversations (issue 16): `GET /v1.0/conversations` with `status=`, `owner_id=`,
//! `unassigned=`, `address=`, `channel=` and `q=`, alone and combined, paged with the cursor,
//! on both backends — and the index following every change (status, name, participants
//! added, linked and removed, rooms deleted) without ever showing another tenant's rooms.

use crate::common::channels::create_account;
use crate::common::{Api, KEY_A, KEY_B, TestServer, on_every_backend, test_config};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Every id `query` lists, walking all pages of `page_size`; no id may repeat.
async fn all(api: &Api, query: &str, page_size: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/v1.0/conversations?page_size={page_size}&{query}");
        if let Some(t) = &token {
            path.push_str(&format!("&page_token={t}"));
        }
        let (s, v) = api.get(&path).await;
        assert_eq!(s, 200, "{query}: {v}");
        out.extend(v["result"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match v["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(out.iter().collect::<HashSet<_>>().len(), out.len(), "{query}: a conversation listed twice");
    out
}

/// The ids `query` lists (one big page).
async fn find(api: &Api, query: &str) -> Vec<String> {
    all(api, query, 100).await
}

/// The listed ids newest first: `ids` given oldest first.
fn newest_first(ids: &[&String]) -> Vec<String> {
    ids.iter().rev().map(|s| s.to_string()).collect()
}

async fn add(api: &Api, conv: &str, body: Value) -> String {
    let (s, p) = api.post(&format!("/v1.0/conversations/{conv}/participants"), body).await;
    assert_eq!(s, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

async fn account(srv: &TestServer, kind: &str, credentials: Value) -> String {
    let body = json!({"type": kind, "provider": if kind == "tel" { "twilio" } else { "whatsapp" }, "name": kind,
                      "address": "+15005550006", "credentials": credentials, "api_base_url": "http://127.0.0.1:9"});
    create_account(srv, body, &[]).await["id"].as_str().unwrap().to_string()
}

async fn put(api: &Api, conv: &str, body: Value) {
    let (s, v) = api.put(&format!("/v1.0/conversations/{conv}"), body).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn each_filter_alone_and_combined() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let tel = account(
            &srv,
            "tel",
            json!({"account_sid": "AC00000000000000000000000000000000", "auth_token": "t0123456789"}),
        )
        .await;
        let wa = account(
            &srv,
            "whatsapp",
            json!({"access_token": "x", "app_secret": "y", "verify_token": "z", "phone_number_id": "1"}),
        )
        .await;

        let billing = api.conversation("Billing question").await;
        add(&api, &billing, json!({"address": {"type": "tel", "target": "+1 (415) 555-0123"}, "account_id": tel}))
            .await;
        add(&api, &billing, json!({"address": {"type": "webchat", "target": "alice", "name": "Alice Smith"}})).await;
        let shipping = api.conversation("Shipping").await;
        add(&api, &shipping, json!({"address": {"type": "whatsapp", "target": "14155550123"}, "account_id": wa})).await;
        let refund = api.conversation("billing REFUND").await;
        let bob = add(&api, &refund, json!({"address": {"type": "webchat", "target": "bob", "name": "Bob"}})).await;
        put(&api, &refund, json!({"status": "pending"})).await;
        let other = api.conversation("Other").await;
        put(&api, &other, json!({"owner_id": "olivia"})).await;

        let cases: Vec<(&str, Vec<&String>)> = vec![
            ("status=pending", vec![&refund]),
            ("status=open", vec![&billing, &shipping, &other]),
            ("status=closed", vec![]),
            ("address=tel:%2B1%20415-555-0123", vec![&billing]),
            ("address=tel:14155550123", vec![&billing]),
            ("address=whatsapp:%2B14155550123", vec![&shipping]),
            ("address=webchat:alice", vec![&billing]),
            ("address=webchat:al", vec![]),
            ("channel=webchat", vec![&billing, &refund]),
            ("channel=whatsapp", vec![&shipping]),
            ("channel=email", vec![]),
            ("q=bill", vec![&billing, &refund]),
            ("q=ALICE%20S", vec![&billing]),
            ("q=%2B1415", vec![&billing, &shipping]),
            ("q=billing%20question%20and%20more", vec![]),
            ("unassigned=true", vec![&billing, &shipping, &refund]),
            ("owner_id=olivia", vec![&other]),
            ("owner_id=none", vec![&billing, &shipping, &refund]),
            // Two or more together: every one must hold.
            ("status=open&channel=webchat", vec![&billing]),
            ("q=bill&status=pending", vec![&refund]),
            ("owner_id=olivia&status=open", vec![&other]),
            ("unassigned=true&q=ship", vec![&shipping]),
            ("channel=tel&q=alice", vec![&billing]),
            ("channel=whatsapp&q=alice", vec![]),
            ("address=webchat:bob&status=open", vec![]),
        ];
        for (query, expected) in &cases {
            assert_eq!(find(&api, query).await, newest_first(expected), "{backend:?}: {query}");
        }

        // A linked endpoint counts as the participant's address and channel.
        let (s, v) = api
            .post(
                &format!("/v1.0/conversations/{refund}/participants/{bob}/links"),
                json!({"address": {"type": "whatsapp", "target": "+14155550199"}, "account_id": wa}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(find(&api, "address=whatsapp:%2B14155550199").await, vec![refund.clone()], "{backend:?}");
        assert_eq!(find(&api, "channel=whatsapp").await, newest_first(&[&shipping, &refund]), "{backend:?}");

        // A new name is found by its prefix, the old one no more.
        put(&api, &other, json!({"name": "Zebra"})).await;
        assert_eq!(find(&api, "q=zeb").await, vec![other.clone()], "{backend:?}");
        assert_eq!(find(&api, "q=oth").await, Vec::<String>::new(), "{backend:?}");

        // An agent token keeps its visibility: its own and the unassigned ones.
        let (_, t) = api.post("/v1.0/tokens", json!({"identity": "olivia", "role": "agent"})).await;
        let agent = Api { key: t["token"].as_str().unwrap().to_string(), ..api.clone() };
        assert_eq!(find(&agent, "status=open").await, newest_first(&[&billing, &shipping, &other]), "{backend:?}");
        let (_, t) = api.post("/v1.0/tokens", json!({"identity": "max", "role": "agent"})).await;
        let max = Api { key: t["token"].as_str().unwrap().to_string(), ..api.clone() };
        assert_eq!(find(&max, "status=open").await, newest_first(&[&billing, &shipping]), "{backend:?}");
        let (s, _) = max.get("/v1.0/conversations?status=open&owner_id=olivia").await;
        assert_eq!(s, 403, "{backend:?}");

        for bad in [
            "status=nope",
            "channel=fax",
            "address=tel:abc",
            "address=alice",
            "address=fax:1",
            "address=webchat:",
            "unassigned=true&owner_id=olivia",
        ] {
            let (s, v) = api.get(&format!("/v1.0/conversations?{bad}")).await;
            assert_eq!(s, 422, "{backend:?}: {bad}: {v}");
        }
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_index_follows_status_changes_removals_and_deletes() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let conv = api.conversation("moving").await;
        let alice = api.webchat(&conv, "alice").await;
        let bob = api.webchat(&conv, "bob").await;
        assert_eq!(find(&api, "status=open&address=webchat:alice").await, vec![conv.clone()], "{backend:?}");

        put(&api, &conv, json!({"status": "pending"})).await;
        assert_eq!(find(&api, "status=open").await, Vec::<String>::new(), "{backend:?}");
        assert_eq!(find(&api, "status=pending").await, vec![conv.clone()], "{backend:?}");
        put(&api, &conv, json!({"status": "resolved"})).await;
        assert_eq!(find(&api, "status=pending").await, Vec::<String>::new(), "{backend:?}");
        assert_eq!(find(&api, "status=resolved").await, vec![conv.clone()], "{backend:?}");

        let (s, _) = api.delete(&format!("/v1.0/conversations/{conv}/participants/{alice}")).await;
        assert_eq!(s, 200);
        assert_eq!(find(&api, "address=webchat:alice").await, Vec::<String>::new(), "{backend:?}");
        assert_eq!(find(&api, "q=alice").await, Vec::<String>::new(), "{backend:?}");
        // Bob is still on webchat: the channel stays until its last participant leaves.
        assert_eq!(find(&api, "channel=webchat").await, vec![conv.clone()], "{backend:?}");
        let (s, _) = api.delete(&format!("/v1.0/conversations/{conv}/participants/{bob}")).await;
        assert_eq!(s, 200);
        assert_eq!(find(&api, "channel=webchat").await, Vec::<String>::new(), "{backend:?}");

        let (s, _) = api.delete(&format!("/v1.0/conversations/{conv}")).await;
        assert_eq!(s, 200);
        assert_eq!(find(&api, "status=resolved").await, Vec::<String>::new(), "{backend:?}");
        assert_eq!(find(&api, "q=mov").await, Vec::<String>::new(), "{backend:?}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn filtered_pages_have_no_gaps_nor_repeats_while_rooms_are_created() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let mut matching = Vec::new();
        for i in 0..23 {
            let hit = i % 3 != 1;
            let c = api.conversation(&format!("{} {i}", if hit { "Match" } else { "miss" })).await;
            api.webchat(&c, &format!("user{i}")).await;
            if i % 5 == 0 {
                put(&api, &c, json!({"status": "pending"})).await;
            } else if hit {
                matching.push(c);
            }
        }
        let expected: Vec<String> = matching.iter().rev().cloned().collect();
        assert!(expected.len() > 10);
        assert_eq!(find(&api, "q=match&status=open").await, expected, "{backend:?}");
        for query in ["q=match&status=open", "status=open&q=mat&channel=webchat"] {
            // Page by page, creating matching rooms between pages: they are newer than the
            // cursor, so they never shift a page, and no page repeats or skips a room.
            let before = find(&api, query).await;
            let mut seen: Vec<String> = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut path = format!("/v1.0/conversations?page_size=4&{query}");
                if let Some(t) = &token {
                    path.push_str(&format!("&page_token={t}"));
                }
                let (s, v) = api.get(&path).await;
                assert_eq!(s, 200, "{v}");
                let page = v["result"].as_array().unwrap();
                assert!(page.len() <= 4);
                seen.extend(page.iter().map(|c| c["id"].as_str().unwrap().to_string()));
                let c = api.conversation("Match late").await;
                api.webchat(&c, "late").await;
                match v["next_page_token"].as_str() {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
            assert_eq!(seen, before, "{backend:?}: {query}");
            assert_eq!(seen[seen.len() - expected.len()..], expected[..], "{backend:?}: {query}");
        }
        // Pages of one are the same walk.
        let ones = all(&api, "q=match%20&status=open", 1).await;
        assert_eq!(ones[ones.len() - expected.len()..], expected[..], "{backend:?}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn another_tenants_rooms_never_appear() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let (a, b) = (srv.api(KEY_A), srv.api(KEY_B));
        let mine = a.conversation("Billing A").await;
        a.webchat(&mine, "alice").await;
        let theirs = b.conversation("Billing B").await;
        b.webchat(&theirs, "alice").await;
        put(&b, &theirs, json!({"status": "pending"})).await;
        put(&a, &mine, json!({"status": "pending"})).await;
        for query in ["q=bill", "address=webchat:alice", "channel=webchat", "status=pending", "unassigned=true&q=b"] {
            assert_eq!(find(&a, query).await, vec![mine.clone()], "{backend:?}: {query}");
            assert_eq!(find(&b, query).await, vec![theirs.clone()], "{backend:?}: {query}");
        }
        srv.stop().await;
    })
    .await;
}

/// On a cluster the index lives in the tenant's slot and follows each change in a second step:
/// the same answers, from either node.
#[tokio::test]
async fn filters_work_on_a_redis_cluster() {
    use crate::common::redis::{Node, RedisCluster};
    let cluster = RedisCluster::start().await;
    let url = cluster.url();
    let (one, two) = tokio::join!(Node::start(&url, true), Node::start(&url, true));
    let (a, b) = (one.api(KEY_A), two.api(KEY_A));
    let mut convs = Vec::new();
    for i in 0..6 {
        let c = a.conversation(&format!("Cluster {i}")).await;
        a.webchat(&c, &format!("user{i}")).await;
        convs.push(c);
    }
    let carol = a.webchat(&convs[2], "carol").await;
    put(&a, &convs[1], json!({"status": "pending"})).await;
    put(&a, &convs[4], json!({"status": "pending"})).await;
    put(&a, &convs[5], json!({"name": "Elsewhere"})).await;
    let other = srv_b_conversation(&two).await;

    assert_eq!(all(&b, "status=pending", 1).await, newest_first(&[&convs[1], &convs[4]]));
    assert_eq!(all(&b, "q=cluster&status=open", 2).await, newest_first(&[&convs[0], &convs[2], &convs[3]]));
    assert_eq!(find(&b, "address=webchat:carol").await, vec![convs[2].clone()]);
    assert_eq!(find(&b, "channel=webchat&q=else").await, vec![convs[5].clone()]);

    put(&b, &convs[4], json!({"status": "open"})).await;
    assert_eq!(find(&a, "status=pending").await, vec![convs[1].clone()]);
    let (s, _) = b.delete(&format!("/v1.0/conversations/{}/participants/{carol}", convs[2])).await;
    assert_eq!(s, 200);
    assert_eq!(find(&a, "address=webchat:carol").await, Vec::<String>::new());
    let (s, _) = a.delete(&format!("/v1.0/conversations/{}", convs[1])).await;
    assert_eq!(s, 200);
    assert_eq!(find(&b, "status=pending").await, Vec::<String>::new());
    // Tenant `b`'s "Cluster b" (with its own carol) never shows.
    assert_eq!(find(&a, "q=cluster").await, newest_first(&[&convs[0], &convs[2], &convs[3], &convs[4]]));
    assert_eq!(find(&two.api(KEY_B), "q=cluster&address=webchat:carol").await, vec![other]);
}

/// A room of tenant `b` named like tenant `a`'s, with a participant `carol`.
async fn srv_b_conversation(node: &crate::common::redis::Node) -> String {
    let api = node.api(KEY_B);
    let c = api.conversation("Cluster b").await;
    api.webchat(&c, "carol").await;
    c
}
