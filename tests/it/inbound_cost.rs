//! What an inbound provider webhook costs on Redis, pinned, and that the room a new sender's
//! first message opens in one step is the room users find: listed, unassigned, found by the
//! filter index, under its contact, announced by events — and one room per sender however
//! many of its first messages race through how many nodes.

use crate::channels_phone::twilio;
use crate::common::channels::{config, twilio_account};
use crate::common::monitor::Monitor;
use crate::common::redis::{Node, RedisServer, tenant_id};
use crate::common::{Api, Backend, KEY_A, TestServer, on_every_backend};
use serde_json::Value;
use switchboard::channels::twilio::signature;

const TOKEN: &str = "twilio-auth-token-0123456789";

/// A signed Twilio SMS from `from` with message sid `sid`, to `url` (a hook URL).
async fn sms_to(url: &str, from: &str, sid: &str, text: &str) -> u16 {
    let params: Vec<(String, String)> = [
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("To", "+15005550006"),
        ("Body", text),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature(TOKEN, url, &params))
        .body(body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

async fn sms(srv: &TestServer, account: &str, from: &str, sid: &str) -> u16 {
    sms_to(&srv.url(&format!("/v1.0/hooks/twilio/{account}")), from, sid, "hello").await
}

fn ids(page: &Value) -> Vec<String> {
    page["result"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

/// The scripts (`EVALSHA`, top level) a webhook ran, each named by what its first key is: the
/// timer worker and the webhook outbox, which run on their own clock, left out.
/// `MONITOR` lines arrive on their own task: waits until `at_least` scripts were logged (or
/// 2 s passed), then a moment more, so a surplus script would be seen too.
async fn scripts(monitor: &Monitor, at_least: usize) -> Vec<String> {
    for _ in 0..100 {
        if logged(monitor).len() >= at_least {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    logged(monitor)
}

fn logged(monitor: &Monitor) -> Vec<String> {
    monitor
        .lines()
        .into_iter()
        .filter(|l| !l.contains(" lua]") && l.to_uppercase().contains("\"EVALSHA\""))
        .filter_map(|l| l.split('"').nth(7).map(str::to_string))
        .filter(|key| !key.ends_with(":timers") && !key.contains(":webhooks:"))
        .map(|key| key.split(':').nth(1).unwrap_or("?").to_string())
        .collect()
}

#[tokio::test]
async fn a_new_senders_first_message_opens_its_room_in_one_script_and_a_known_sender_runs_only_the_append() {
    let srv = TestServer::start_on(Backend::Redis, config()).await;
    let api = srv.api(KEY_A);
    let (_stub, acc) = twilio(&srv).await;
    // Scripts loaded, account cached: what follows is the steady cost.
    assert_eq!(sms(&srv, &acc, "+14155550100", "SM00000000000000000000000000000001").await, 200);
    let port = srv.redis.as_ref().unwrap().port;

    let monitor = Monitor::start(port).await;
    assert_eq!(sms(&srv, &acc, "+14155550199", "SM00000000000000000000000000000002").await, 200);
    // The contact is made (its own slot on a cluster), then one script binds, creates and seats
    // (was: bind, owner index, create, add participant), then the append.
    assert_eq!(scripts(&monitor, 3).await, ["caddr", "binds", "conv"], "a new sender's scripts");

    let monitor = Monitor::start(port).await;
    assert_eq!(sms(&srv, &acc, "+14155550199", "SM00000000000000000000000000000003").await, 200);
    assert_eq!(scripts(&monitor, 1).await, ["conv"], "a known sender's scripts: the append");

    // The room is everything the chain of scripts made it.
    let (_, all) = api.get("/v1.0/conversations").await;
    let conv = ids(&all)[0].clone();
    let (_, c) = api.get(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!((c["last_seq"].as_u64(), c["status"].as_str()), (Some(2), Some("open")), "{c}");
    let (_, parts) = api.get(&format!("/v1.0/conversations/{conv}/participants")).await;
    let parts = parts["result"].as_array().cloned().unwrap_or_else(|| parts.as_array().cloned().unwrap_or_default());
    assert_eq!(parts.len(), 1, "{parts:?}");
    let contact = parts[0]["contact_id"].as_str().expect("the sender's contact").to_string();
    for query in [
        "unassigned=true".to_string(),
        "status=open&channel=tel".to_string(),
        "address=tel:%2B14155550199".to_string(),
        "q=%2B1415555019".to_string(),
        format!("contact_id={contact}"),
    ] {
        let (s, found) = api.get(&format!("/v1.0/conversations?{query}")).await;
        assert_eq!(s, 200, "{found}");
        assert!(ids(&found).contains(&conv), "{query} finds the room: {found}");
    }
    // Its index entries are counted as the scripts of later changes expect: a status change
    // moves it between statuses, a deletion unfiles every entry.
    let (s, v) = api.put(&format!("/v1.0/conversations/{conv}"), serde_json::json!({"status": "resolved"})).await;
    assert_eq!(s, 200, "{v}");
    let (_, open) = api.get("/v1.0/conversations?status=open&q=%2B1415555019").await;
    let (_, resolved) = api.get("/v1.0/conversations?status=resolved&q=%2B1415555019").await;
    assert_eq!((ids(&open).contains(&conv), ids(&resolved).contains(&conv)), (false, true), "{open} {resolved}");
    // Announced: created, then its participant, then the message (the tenant's event stream).
    let mut redis = srv.redis.as_ref().unwrap().connection().await;
    let pattern = format!("*:events:{{{}}}:stream", tenant_id("a"));
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut redis).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..100 {
        let entries: Vec<(String, Vec<(String, String)>)> =
            redis::cmd("XRANGE").arg(&keys[0]).arg("-").arg("+").query_async(&mut redis).await.unwrap();
        kinds = entries
            .iter()
            .filter_map(|(_, f)| serde_json::from_str::<Value>(&f.first()?.1).ok())
            .filter(|e| e["conversation_id"] == conv.as_str())
            .filter_map(|e| e["type"].as_str().map(String::from))
            .collect();
        if kinds.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(kinds[..4], ["conversation.created", "participant.added", "message.created", "message.created"]);
    let (s, v) = api.delete(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!(s, 200, "{v}");
    for query in ["q=%2B1415555019", "address=tel:%2B14155550199", "channel=tel&status=resolved"] {
        let (_, found) = api.get(&format!("/v1.0/conversations?{query}")).await;
        assert!(!ids(&found).contains(&conv), "{query} after the deletion: {found}");
    }
    let mut ix: Vec<String> = redis::cmd("KEYS").arg(format!("*{{{conv}}}*")).query_async(&mut redis).await.unwrap();
    ix.retain(|k| !k.contains(":idem:"));
    assert!(ix.is_empty(), "no key of the room is left: {ix:?}");
    let tfind: Vec<String> = redis::cmd("KEYS").arg("*:tfind:*").query_async(&mut redis).await.unwrap();
    let simple = conv.replace('-', "");
    for key in tfind {
        let members: Vec<Vec<u8>> =
            redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).query_async(&mut redis).await.unwrap();
        let left: Vec<String> =
            members.iter().map(|m| String::from_utf8_lossy(m).into_owned()).filter(|m| m.ends_with(&simple)).collect();
        assert!(left.is_empty(), "filter index entries left behind: {left:?}");
    }
    srv.stop().await;
}

/// First messages of one new sender, all at once: one room, every message in it.
async fn racing_first_messages_make_one_room(api: &Api, hooks: &[String]) {
    const N: usize = 8;
    let sends = (0..N).map(|i| {
        let url = hooks[i % hooks.len()].clone();
        async move { sms_to(&url, "+14155550142", &format!("SM{i:032}"), &format!("m{i}")).await }
    });
    let codes = futures_util::future::join_all(sends).await;
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    let (_, found) = api.get("/v1.0/conversations?address=tel:%2B14155550142").await;
    let rooms = ids(&found);
    assert_eq!(rooms.len(), 1, "one room for one sender: {found}");
    let (_, c) = api.get(&format!("/v1.0/conversations/{}", rooms[0])).await;
    assert_eq!(c["last_seq"].as_u64(), Some(N as u64), "every message in it: {c}");
}

#[tokio::test]
async fn a_new_senders_racing_first_messages_open_one_room() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config()).await;
        let (_stub, acc) = twilio(&srv).await;
        let hook = srv.url(&format!("/v1.0/hooks/twilio/{acc}"));
        racing_first_messages_make_one_room(&srv.api(KEY_A), &[hook]).await;
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_new_senders_first_messages_through_two_nodes_open_one_room() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let (a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));
    let body = twilio_account("line", "+15005550006", TOKEN, "http://127.0.0.1:9");
    let (s, account) = a.api(KEY_A).post("/v1.0/conversation_accounts", body).await;
    assert_eq!(s, 201, "{account}");
    let acc = account["id"].as_str().unwrap();
    let hooks = [a.url(&format!("/v1.0/hooks/twilio/{acc}")), b.url(&format!("/v1.0/hooks/twilio/{acc}"))];
    racing_first_messages_make_one_room(&a.api(KEY_A), &hooks).await;
}

/// The one open room `from` is in, and its stored message count.
async fn room_of(api: &Api, from: &str) -> (String, u64) {
    let (_, found) =
        api.get(&format!("/v1.0/conversations?status=open&address=tel:{}", from.replace('+', "%2B"))).await;
    let rooms = ids(&found);
    assert_eq!(rooms.len(), 1, "{from} is in one open room: {found}");
    let (_, c) = api.get(&format!("/v1.0/conversations/{}", rooms[0])).await;
    (rooms[0].clone(), c["last_seq"].as_u64().unwrap())
}

async fn last_seq(api: &Api, conv: &str) -> u64 {
    let (s, c) = api.get(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!(s, 200, "{c}");
    c["last_seq"].as_u64().unwrap()
}

/// A node reads a known sender's room together with its binding, guessing the room from the
/// binding it saw last; the sender leaving the room, the room closing or being deleted through
/// another node must still send the next message to a new room, never the old one.
#[tokio::test]
async fn a_known_senders_room_guessed_by_a_node_is_never_used_once_changed_through_another() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let (a, b) = tokio::join!(Node::start(&url, false), Node::start(&url, false));
    let (api_a, api_b) = (a.api(KEY_A), b.api(KEY_A));
    let body = twilio_account("line", "+15005550006", TOKEN, "http://127.0.0.1:9");
    let (s, account) = api_a.post("/v1.0/conversation_accounts", body).await;
    assert_eq!(s, 201, "{account}");
    let hook = a.url(&format!("/v1.0/hooks/twilio/{}", account["id"].as_str().unwrap()));
    let from = "+14155550177";
    let sid = |i: u32| format!("SM{i:032}");
    assert_eq!(sms_to(&hook, from, &sid(1), "one").await, 200);
    assert_eq!(sms_to(&hook, from, &sid(2), "two").await, 200);
    let (r1, n) = room_of(&api_a, from).await;
    assert_eq!(n, 2, "both in the first room");

    // The sender leaves the room (through B): the next message opens a new room.
    let (_, parts) = api_b.get(&format!("/v1.0/conversations/{r1}/participants")).await;
    let parts = parts["result"].as_array().cloned().unwrap_or_else(|| parts.as_array().cloned().unwrap_or_default());
    let pid = parts[0]["id"].as_str().unwrap();
    let (s, v) = api_b.delete(&format!("/v1.0/conversations/{r1}/participants/{pid}")).await;
    assert!(s == 200 || s == 204, "{s} {v}");
    assert_eq!(sms_to(&hook, from, &sid(3), "three").await, 200);
    let (r2, n) = room_of(&api_a, from).await;
    assert_ne!(r2, r1);
    assert_eq!((n, last_seq(&api_a, &r1).await), (1, 2), "nothing more in the room it left");

    // The room is closed (through B): the next message opens a new room.
    let (s, v) = api_b.put(&format!("/v1.0/conversations/{r2}"), serde_json::json!({"status": "closed"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(sms_to(&hook, from, &sid(4), "four").await, 200);
    let (r3, n) = room_of(&api_a, from).await;
    assert!(r3 != r1 && r3 != r2);
    assert_eq!((n, last_seq(&api_a, &r2).await), (1, 1), "nothing more in the closed room");

    // The room is deleted (through B): the next message opens a new room.
    let (s, v) = api_b.delete(&format!("/v1.0/conversations/{r3}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(sms_to(&hook, from, &sid(5), "five").await, 200);
    let (r4, n) = room_of(&api_a, from).await;
    assert!(![&r1, &r2, &r3].contains(&&r4));
    assert_eq!(n, 1);
}
