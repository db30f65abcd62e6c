//! The inbox's tab counts (issue 19): `GET /v1.0/conversations/counts` answers Mine,
//! Unassigned and All under the list's filters, on both backends — equal to the lengths of
//! the lists it stands for, for API keys, operator tokens and agents (who count only what they
//! may see), never counting another tenant's rooms, and stopping at `limits.count_cap`.

use crate::common::{Api, KEY_A, KEY_B, TestServer, on_every_backend, test_config};
use serde_json::{Value, json};

/// How many conversations `query` lists (walking every page).
async fn listed(api: &Api, query: &str) -> u64 {
    let (mut n, mut token) = (0, None::<String>);
    loop {
        let mut path = format!("/v1.0/conversations?page_size=2&{query}");
        if let Some(t) = &token {
            path.push_str(&format!("&page_token={t}"));
        }
        let (s, v) = api.get(&path).await;
        assert_eq!(s, 200, "{query}: {v}");
        n += v["result"].as_array().unwrap().len() as u64;
        match v["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return n,
        }
    }
}

async fn counts(api: &Api, query: &str) -> Value {
    let (s, v) = api.get(&format!("/v1.0/conversations/counts?{query}")).await;
    assert_eq!(s, 200, "{query}: {v}");
    v
}

async fn put(api: &Api, conv: &str, body: Value) {
    let (s, v) = api.put(&format!("/v1.0/conversations/{conv}"), body).await;
    assert_eq!(s, 200, "{v}");
}

async fn add(api: &Api, conv: &str, kind: &str, target: &str) -> Value {
    let (s, p) = api
        .post(
            &format!("/v1.0/conversations/{conv}/participants"),
            json!({"address": {"type": kind, "target": target, "name": target}}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    p
}

async fn token(api: &Api, body: Value) -> Api {
    let (s, t) = api.post("/v1.0/tokens", body).await;
    assert_eq!(s, 201, "{t}");
    Api { key: t["token"].as_str().unwrap().to_string(), ..api.clone() }
}

/// Every count of `query` equals the length of the list it stands for; `mine` is `who`'s
/// (asked for with `owner_id=` when `ask`, else the caller's own identity).
async fn check(api: &Api, query: &str, who: Option<&str>, ask: bool, label: &str) -> Value {
    let asked = match who {
        Some(a) if ask => format!("{query}&owner_id={a}"),
        _ => query.to_string(),
    };
    let c = counts(api, &asked).await;
    assert_eq!(c["all"], listed(api, query).await, "{label}: all of `{asked}`: {c}");
    assert_eq!(c["unassigned"], listed(api, &format!("{query}&unassigned=true")).await, "{label}: `{asked}`: {c}");
    let mine = match who {
        Some(a) => listed(api, &format!("{query}&owner_id={a}")).await,
        None => 0,
    };
    assert_eq!(c["mine"], mine, "{label}: mine of `{asked}`: {c}");
    assert_eq!(c["capped"], false, "{label}: {c}");
    c
}

#[tokio::test]
async fn counts_equal_the_lists_for_every_caller() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let billing = api.conversation("Billing question").await;
        let alice = add(&api, &billing, "webchat", "alice").await;
        let shipping = api.conversation("Shipping").await;
        add(&api, &shipping, "webchat", "bob").await;
        let refund = api.conversation("billing refund").await;
        put(&api, &refund, json!({"status": "pending", "owner_id": "olivia"})).await;
        let mine = api.conversation("Olivia's").await;
        put(&api, &mine, json!({"owner_id": "olivia"})).await;
        let maxs = api.conversation("Max's billing").await;
        put(&api, &maxs, json!({"owner_id": "max"})).await;
        add(&api, &maxs, "webchat", "alice").await;
        // Another tenant's rooms are never counted.
        let b = srv.api(KEY_B);
        let theirs = b.conversation("Billing elsewhere").await;
        put(&b, &theirs, json!({"owner_id": "olivia"})).await;

        let contact = alice["contact_id"].as_str().expect("a webchat participant has a contact").to_string();
        let queries = [
            "".to_string(),
            "status=open".into(),
            "status=pending".into(),
            "status=closed".into(),
            "q=bill".into(),
            "q=bill&status=open".into(),
            "channel=webchat".into(),
            "address=webchat:alice".into(),
            "address=webchat:alice&q=max".into(),
            format!("contact_id={contact}"),
            format!("contact_id={contact}&status=open"),
        ];
        let olivia = token(&api, json!({"identity": "olivia", "role": "agent"})).await;
        let operator = token(&api, json!({"identity": "olivia", "all_conversations": true})).await;
        for q in &queries {
            check(&api, q, None, false, &format!("{backend:?} API key")).await;
            check(&api, q, Some("max"), true, &format!("{backend:?} API key for max")).await;
            check(&olivia, q, Some("olivia"), false, &format!("{backend:?} agent")).await;
            check(&olivia, q, Some("olivia"), true, &format!("{backend:?} agent naming itself")).await;
            check(&operator, q, Some("olivia"), false, &format!("{backend:?} operator token")).await;
        }

        // The numbers a user sees, spelled out.
        let c = counts(&api, "").await;
        assert_eq!((c["mine"].as_u64(), c["unassigned"].as_u64(), c["all"].as_u64()), (Some(0), Some(2), Some(5)));
        // Olivia sees her two and the two unassigned, never Max's.
        let c = counts(&olivia, "").await;
        assert_eq!((c["mine"].as_u64(), c["unassigned"].as_u64(), c["all"].as_u64()), (Some(2), Some(2), Some(4)));
        let c = counts(&olivia, "q=bill").await;
        assert_eq!((c["mine"].as_u64(), c["unassigned"].as_u64(), c["all"].as_u64()), (Some(1), Some(1), Some(2)));
        let c = counts(&b, "").await;
        assert_eq!((c["mine"].as_u64(), c["unassigned"].as_u64(), c["all"].as_u64()), (Some(0), Some(0), Some(1)));
        let c = counts(&b, "owner_id=olivia&q=bill").await;
        assert_eq!((c["mine"].as_u64(), c["all"].as_u64()), (Some(1), Some(1)));

        // Changes show at once: unassigning and deleting.
        let (s, _) = api.post(&format!("/v1.0/conversations/{mine}/unassign"), json!({})).await;
        assert_eq!(s, 200);
        let (s, _) = api.delete(&format!("/v1.0/conversations/{shipping}")).await;
        assert_eq!(s, 200);
        let c = check(&olivia, "", Some("olivia"), false, &format!("{backend:?} after changes")).await;
        assert_eq!((c["mine"].as_u64(), c["unassigned"].as_u64(), c["all"].as_u64()), (Some(1), Some(2), Some(3)));
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn counts_refuse_what_the_list_refuses() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let conv = api.conversation("one").await;
        let agent = token(&api, json!({"identity": "olivia", "role": "agent"})).await;
        api.webchat(&conv, "eve").await;
        let user = Api { key: api.token("eve", &[&conv]).await, ..api.clone() };
        let cases: [(&Api, &str, u16); 11] = [
            (&api, "status=nope", 422),
            (&api, "channel=fax", 422),
            (&api, "address=tel:abc", 422),
            (&api, "owner_id=none", 422),
            (&api, &format!("account_id={conv}"), 422),
            (&api, "page_size=5", 400),
            (&api, "unassigned=true&q=a", 400),
            (&api, "status=open&bogus=1", 400),
            (&agent, "owner_id=max", 403),
            (&user, "", 403),
            (&Api { key: "sk_nope_0123456789".into(), ..api.clone() }, "", 401),
        ];
        for (who, q, want) in cases {
            let (s, v) = who.get(&format!("/v1.0/conversations/counts?{q}")).await;
            assert_eq!(s, want, "{backend:?}: `{q}`: {v}");
            assert!(v["error"]["code"].is_string(), "{backend:?}: `{q}`: a JSON error with a code: {v}");
        }
        // The list reads the same filters beside its own paging and owner keys; a key neither
        // knows is refused there too.
        let (s, v) = api.get("/v1.0/conversations?page_size=1&unassigned=true&status=open&q=one").await;
        assert_eq!((s, v["result"].as_array().map(Vec::len)), (200, Some(1)), "{backend:?}: {v}");
        let (s, v) = api.get("/v1.0/conversations?status=open&bogus=1").await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_query")), "{backend:?}: {v}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn counts_stop_at_the_cap() {
    on_every_backend(async |backend| {
        let mut config = test_config();
        config.limits.count_cap = 3;
        let srv = TestServer::start_on(backend, config).await;
        let api = srv.api(KEY_A);
        for i in 0..5 {
            api.conversation(&format!("room {i}")).await;
        }
        let solo = api.conversation("solo").await;
        put(&api, &solo, json!({"owner_id": "olivia"})).await;
        let agent = token(&api, json!({"identity": "olivia", "role": "agent"})).await;

        // Owner indexes alone (Redis: ZCARD) and a filter walked page by page, both capped.
        for (who, q) in [(&api, ""), (&api, "q=room"), (&api, "status=open"), (&agent, ""), (&agent, "q=room")] {
            let c = counts(who, q).await;
            assert_eq!(c["all"], 3, "{backend:?}: `{q}`: {c}");
            assert_eq!(c["unassigned"], 3, "{backend:?}: `{q}`: {c}");
            assert_eq!(c["capped"], true, "{backend:?}: `{q}`: {c}");
        }
        // Below the cap: exact, and not capped.
        let c = counts(&agent, "q=solo").await;
        assert_eq!((c["mine"].as_u64(), c["unassigned"].as_u64(), c["all"].as_u64()), (Some(1), Some(0), Some(1)));
        assert_eq!(c["capped"], false, "{backend:?}: {c}");
        let c = counts(&api, "q=room%204").await;
        assert_eq!((c["all"].as_u64(), c["capped"].as_bool()), (Some(1), Some(false)), "{backend:?}: {c}");
        srv.stop().await;
    })
    .await;
}
