//! Twilio deliveries through the durable outbox: a pending delivery survives a killed node,
//! the request id travels to the provider, and a WebSocket burst writes its outbox entries in
//! one round trip.

use super::*;
use crate::common::channels::twilio_account;

/// Redis backend: a node SIGKILLed while a delivery waits for its retry loses nothing — the
/// restarted node reclaims the outbox entry and sends it.
#[tokio::test]
async fn pending_delivery_survives_a_killed_node() {
    let redis = common::redis::RedisServer::start().await;
    let stub = twilio_stub().await;
    stub.script([Answer { status: 503, headers: vec![("retry-after", "2".into())], body: "busy".into() }]);
    let mut node = common::redis::Node::start_with(&redis.url(), false, |c| {
        c.channels.retry_base_ms = 1500;
        c.channels.retry_max_ms = 1500;
        c.channels.request_timeout_ms = 500;
    })
    .await;
    let api = node.api(KEY_A);
    let (_, a) =
        api.post("/v1.0/conversation_accounts", twilio_account("line", "+15005550006", TOKEN, &stub.url)).await;
    let acc = a["id"].as_str().unwrap().to_string();
    let url = node.url(&format!("/v1.0/hooks/twilio/{acc}"));
    let form = fixture("twilio_inbound_sms.form");
    let r =
        post(&url, &[("x-twilio-signature", signed(TOKEN, &url, &form)), ("content-type", FORM.into())], &form).await;
    assert_eq!(r.status(), 200);
    let (_, list) = api.get("/v1.0/conversations").await;
    let c = list["result"][0]["id"].as_str().unwrap().to_string();
    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "survive"})).await;
    assert_eq!(s, 201);
    // First attempt answered 503: the retry now waits (2 s) in the durable outbox.
    stub.wait_for(1).await;
    retry_alone_in_the_outbox(&redis).await;
    node.kill();
    node.restart().await;
    let reqs = stub.wait_for(2).await;
    assert_eq!(reqs[1].form_field("Body").as_deref(), Some("survive"));
    let path = format!("/v1.0/conversations/{c}/messages/{}", m["id"].as_str().unwrap());
    let api = node.api(KEY_A);
    let d = eventually(|| async {
        let (_, m) = api.get(&path).await;
        (m["deliveries"][0]["status"] == "sent").then(|| m["deliveries"][0].clone())
    })
    .await;
    assert_eq!(d["attempts"], 2);
    assert_eq!(stub.requests().len(), 2, "sent exactly once after the restart");
}

/// Waits until the outbox stream holds the retry alone: written as its own entry (with a
/// `not_before_ms`), then the first attempt's entry acknowledged and deleted. A kill between
/// those two writes may send twice (delivery is at least once, by design); the test above is
/// about a pending retry surviving, so it kills only once the retry is the one entry.
async fn retry_alone_in_the_outbox(redis: &common::redis::RedisServer) {
    use ::redis::AsyncCommands;
    let key = format!("{}:outbox:{{channels}}", common::test_config().redis.key_prefix);
    let conn = redis.connection().await;
    common::redis::wait_until(std::time::Duration::from_secs(10), "the retry alone in the outbox stream", || {
        let (key, mut conn) = (key.clone(), conn.clone());
        async move {
            let reply: ::redis::streams::StreamRangeReply = conn.xrange_all(&key).await.unwrap_or_default();
            let retry = |e: &::redis::streams::StreamId| {
                e.map.values().any(|v| {
                    let text: String = ::redis::from_redis_value_ref(v).unwrap_or_default();
                    serde_json::from_str::<serde_json::Value>(&text)
                        .is_ok_and(|j| j["not_before_ms"].as_u64() > Some(0))
                })
            };
            matches!(reply.ids.as_slice(), [only] if retry(only))
        }
    })
    .await;
}

/// The `X-Request-Id` of the API call that posted a message reaches the provider's API.
#[tokio::test]
async fn request_id_travels_to_the_provider() {
    let (srv, stub, _, c) = with_room(Backend::Memory).await;
    let r = reqwest::Client::new()
        .post(srv.url(&format!("/v1.0/conversations/{c}/messages")))
        .bearer_auth(KEY_A)
        .header("x-request-id", "req-7f3a")
        .json(&json!({"text": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["x-request-id"].to_str().unwrap()), (201, "req-7f3a"));
    let sent = &stub.wait_for(1).await[0];
    assert_eq!(sent.header("x-request-id"), "req-7f3a");
    srv.stop().await;
}

/// How many Redis round trips the node behind `srv` made for `command` (its own
/// `switchboard_redis_command_duration_seconds` histogram: one sample per call it awaited;
/// a pipeline is recorded as `pipeline`).
fn redis_round_trips(srv: &TestServer, command: &str) -> u64 {
    let label = format!("command=\"{command}\"");
    let text = srv.state.metrics.render();
    let series = text
        .lines()
        .filter(|l| l.starts_with("switchboard_redis_command_duration_seconds_count{") && l.contains(&label));
    series.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>() as u64
}

/// Redis backend: a burst of 64 WebSocket `send`s (posted together by `post_many`) into a room
/// with an SMS participant writes its 64 outbox entries in one pipeline — no `XADD` round
/// trip per job — and every SMS still reaches Twilio, in the order sent.
#[tokio::test]
async fn a_websocket_burst_writes_its_outbox_entries_in_one_round_trip() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    const BURST: usize = 64;
    let mut cfg = config();
    // Events would XADD to their own stream; without it every XADD the node sends is the outbox's.
    cfg.redis.events_stream_max_len = 0;
    let srv = TestServer::start_on(Backend::Redis, cfg).await;
    let stub = twilio_stub().await;
    let acc = account(&srv, &stub, "+15005550006").await;
    assert_eq!(webhook(&srv, &acc, &fixture("twilio_inbound_sms.form"), Some(TOKEN)).await.status(), 200);
    let c = first_conversation(&srv).await;
    let mut ws = agent_ws(&srv, &c).await;
    let monitor = Monitor::start(srv.redis.as_ref().unwrap().port).await;
    let xadds_before = redis_round_trips(&srv, "XADD");

    // Written at once and flushed once: the server reads them as one burst.
    for i in 0..BURST {
        let f =
            json!({"type": "send", "conversation_id": c, "text": format!("burst-{i}-"), "client_id": format!("b{i}")});
        ws.stream.feed(Message::Text(f.to_string().into())).await.unwrap();
    }
    ws.stream.flush().await.unwrap();
    let mut acked = Vec::new();
    while acked.len() < BURST {
        let f = ws.next().await;
        match f["type"].as_str() {
            Some("ack") => acked.push(f["client_id"].as_str().unwrap().to_string()),
            Some("message" | "message_updated" | "presence" | "typing" | "read") => {}
            _ => panic!("unexpected frame {f}"),
        }
    }
    assert_eq!(acked, (0..BURST).map(|i| format!("b{i}")).collect::<Vec<_>>());
    // Acked means the deliveries are durable: the outbox writes are done by now.
    let xadds = redis_round_trips(&srv, "XADD") - xadds_before;
    assert_eq!(xadds, 0, "{xadds} XADD round trips for one burst: its outbox entries must go in one pipeline");

    // Every SMS reaches Twilio, in the order sent.
    let reqs = stub.wait_for(BURST).await;
    let bodies: Vec<String> = reqs.iter().map(|r| r.form_field("Body").unwrap()).collect();
    assert_eq!(bodies, (0..BURST).map(|i| format!("burst-{i}-")).collect::<Vec<_>>());

    // Redis saw the 64 outbox XADDs, in order, from one connection with nothing of that
    // connection's in between: one pipeline.
    let outbox = |l: &String| l.contains("\"XADD\"") && l.contains(":outbox:");
    let lines = eventually(|| async {
        let lines = monitor.lines();
        (lines.iter().filter(|l| outbox(l)).count() >= BURST).then_some(lines)
    })
    .await;
    let writes: Vec<&String> = lines.iter().filter(|l| outbox(l)).collect();
    assert_eq!(writes.len(), BURST, "one outbox entry per SMS");
    let order: Vec<usize> = writes
        .iter()
        .map(|l| {
            let rest = &l[l.find("burst-").unwrap() + 6..];
            rest[..rest.find('-').unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(order, (0..BURST).collect::<Vec<_>>(), "outbox entries in send order");
    let node = monitor_client(writes[0]);
    let from_node: Vec<&String> = lines.iter().filter(|l| monitor_client(l) == node).collect();
    let first = from_node.iter().position(|l| outbox(l)).unwrap();
    assert!(from_node[first..first + BURST].iter().all(|l| outbox(l)), "the 64 XADDs were sent as one pipeline");
    srv.stop().await;
}
