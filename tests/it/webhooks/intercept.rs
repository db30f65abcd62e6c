//! Intercept webhooks (allow, reject, modify, `on_failure`) and endpoints too slow to answer.

use super::*;

/// A receiver whose answers may take time: `f(event) -> (status, body, delay)`.
async fn slow_receiver(
    f: impl Fn(&Value) -> (u16, String, u64) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>, Arc<AtomicUsize>) {
    let seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let peak = Arc::new(AtomicUsize::new(0));
    let now = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let (s, p) = (seen.clone(), peak.clone());
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (s, p, n, f) = (s.clone(), p.clone(), now.clone(), f.clone());
        async move {
            let inflight = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(inflight, Ordering::SeqCst);
            s.lock().unwrap().push((headers, body.clone()));
            let (status, answer, delay) = f(&serde_json::from_slice(&body).unwrap_or(Value::Null));
            tokio::time::sleep(Duration::from_millis(delay)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            (axum::http::StatusCode::from_u16(status).unwrap(), answer)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/intercept", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen, peak)
}

#[tokio::test]
async fn intercept_allows_rejects_modifies_and_applies_on_failure() {
    let srv = TestServer::start_with(config()).await;
    let api = srv.api(KEY_A);
    let (url, seen, _) = slow_receiver(|ev| {
        let text = ev["data"]["text"].as_str().unwrap_or("");
        let allow = || r#"{"action":"allow"}"#.to_string();
        match text {
            t if t.starts_with("spam") => (200, r#"{"action":"reject","reason":"looks like spam"}"#.into(), 0),
            "edit me" => (
                200,
                json!({"action": "modify", "text": "edited", "medias": [{"url": "https://cdn.example.com/a.png", "content_type": "image/png"}]})
                    .to_string(),
                0,
            ),
            "slow" => (200, allow(), 1500),
            "broken" => (500, "oops".into(), 0),
            "garbage" => (200, "not json".into(), 0),
            "empty it" => (200, r#"{"action":"modify","text":""}"#.into(), 0),
            _ => (200, allow(), 0),
        }
    })
    .await;
    let (hook, secret) = webhook(&api, json!({"url": url, "mode": "intercept"})).await;
    let (_, got) = api.get(&format!("/v1.0/webhooks/{hook}")).await;
    assert_eq!((got["events"].clone(), got["on_failure"].as_str()), (json!(["message.creating"]), Some("allow")));
    let c = api.conversation("guarded").await;
    let path = format!("/v1.0/conversations/{c}/messages");
    let post = |text: &'static str| {
        let (api, path) = (api.clone(), path.clone());
        async move { api.post(&path, json!({"text": text})).await }
    };

    let (s, m) = post("hello").await;
    assert_eq!((s, m["text"].as_str()), (201, Some("hello")));
    let (headers, body) = seen.lock().unwrap()[0].clone();
    let ev = verify(&headers, &body, &secret);
    assert_eq!((ev["type"].as_str(), ev["data"]["text"].as_str()), (Some("message.creating"), Some("hello")));
    assert_eq!(ev["data"]["seq"], 0);

    let (s, e) = post("spam spam").await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("rejected_by_webhook")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("looks like spam"));

    let (s, m) = post("edit me").await;
    assert_eq!(
        (s, m["text"].as_str(), m["medias"][0]["content_type"].as_str()),
        (201, Some("edited"), Some("image/png"))
    );

    // Failures with on_failure = allow: stored as sent.
    for text in ["slow", "broken", "garbage", "empty it"] {
        let t0 = Instant::now();
        let (s, m) = post(text).await;
        assert_eq!((s, m["text"].as_str()), (201, Some(text)), "{text}: {m}");
        assert!(t0.elapsed() < Duration::from_millis(1400), "{text} waited for the timeout only");
    }
    // on_failure = reject.
    let (s, _) = api.put(&format!("/v1.0/webhooks/{hook}"), json!({"on_failure": "reject"})).await;
    assert_eq!(s, 200);
    for text in ["slow", "broken", "garbage"] {
        let (s, e) = post(text).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("rejected_by_webhook")), "{text}: {e}");
    }
    let (_, hist) = api.get(&format!("{path}?page_size=100")).await;
    let texts: Vec<&str> = hist["result"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        ["hello", "edited", "slow", "broken", "garbage", "empty it"],
        "rejected messages were not stored"
    );

    // Over WebSocket a rejection is an `error` frame, not an ack.
    api.webchat(&c, "alice").await;
    let mut ws = srv.ws(&api.token("alice", &[&c]).await).await;
    ws.subscribe(&c, None).await;
    ws.send(json!({"type": "send", "conversation_id": c, "text": "spam again", "client_id": "x1"})).await;
    let e = ws.next_of("error").await;
    assert_eq!((e["code"].as_str(), e["client_id"].as_str()), (Some("rejected_by_webhook"), Some("x1")));
    ws.send(json!({"type": "send", "conversation_id": c, "text": "edit me", "client_id": "x2"})).await;
    assert_eq!(ws.next_of("ack").await["client_id"], "x2");

    // Tenant b has no intercept webhook: not called.
    let before = seen.lock().unwrap().len();
    let other = srv.api(KEY_B);
    let cb = other.conversation("free").await;
    assert_eq!(other.post(&format!("/v1.0/conversations/{cb}/messages"), json!({"text": "spam"})).await.0, 201);
    assert_eq!(seen.lock().unwrap().len(), before);
    srv.stop().await;
}

#[tokio::test]
async fn slow_endpoint_blocks_neither_others_nor_posting() {
    let mut cfg = config();
    cfg.webhooks.max_concurrency_per_endpoint = 2;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let (slow_url, slow_seen, peak) = slow_receiver(|_| (200, "ok".into(), 1500)).await;
    let fast = ok_stub().await;
    webhook(&api, json!({"url": slow_url, "events": ["message.created"]})).await;
    webhook(&api, json!({"url": fast.url, "events": ["message.created"]})).await;
    let mut convs = Vec::new();
    for i in 0..5 {
        convs.push(api.conversation(&format!("c{i}")).await);
    }
    let t0 = Instant::now();
    for c in &convs {
        assert_eq!(api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "hi"})).await.0, 201);
    }
    assert!(t0.elapsed() < Duration::from_millis(1000), "posting does not wait for webhooks");
    fast.wait_for(5).await;
    assert!(t0.elapsed() < Duration::from_millis(1400), "the fast endpoint is not held up by the slow one");
    eventually(|| async { (slow_seen.lock().unwrap().len() == 5).then_some(()) }).await;
    assert_eq!(peak.load(Ordering::SeqCst), 2, "at most max_concurrency_per_endpoint requests in flight");
    srv.stop().await;
}

/// An intercept webhook rejecting the first SMS of a new number leaves nothing behind: no
/// room, no participant, no binding (a later SMS from the number opens a fresh room).
#[tokio::test]
async fn a_rejected_first_sms_leaves_no_room_behind() {
    common::on_every_backend(a_rejected_first_sms_leaves_no_room_behind_on).await;
}

async fn a_rejected_first_sms_leaves_no_room_behind_on(backend: common::Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let api = srv.api(KEY_A);
    let reject = Arc::new(AtomicBool::new(true));
    let r = reject.clone();
    let (url, asked, _) = slow_receiver(move |_| {
        let answer =
            if r.load(Ordering::SeqCst) { r#"{"action":"reject","reason":"no"}"# } else { r#"{"action":"allow"}"# };
        (200, answer.into(), 0)
    })
    .await;
    webhook(&api, json!({"url": url, "mode": "intercept"})).await;
    let notify = ok_stub().await;
    let kinds = ["conversation.created", "participant.added", "conversation.deleted", "message.created"];
    webhook(&api, json!({"url": notify.url, "events": kinds})).await;
    let (s, t) = api.post("/v1.0/tokens", json!({"identity": "olivia", "all_conversations": true})).await;
    assert_eq!(s, 201, "{t}");
    let mut watcher = srv.ws(t["token"].as_str().unwrap()).await;
    watcher.send(json!({"type": "watch_conversations"})).await;
    assert_eq!(watcher.next().await, json!({"type": "watching"}));
    let (_stub, acc) = crate::channels_phone::twilio(&srv).await;

    assert_eq!(crate::channels_phone::sms_from(&srv, &acc, "+14155550123").await, 422);
    let (_, list) = api.get("/v1.0/conversations").await;
    assert_eq!(list["result"], json!([]), "a rejected first message left a room: {list}");
    let (_, found) = api.get(&format!("/v1.0/conversations?account_id={acc}&address=%2B14155550123")).await;
    assert_eq!(found["result"], json!([]), "its binding stayed: {found}");
    // The intercept saw the draft with the id reserved for the room, which was never created.
    let draft: Value = serde_json::from_slice(&asked.lock().unwrap()[0].1).unwrap();
    let reserved = draft["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(draft["data"]["conversation_id"].as_str(), Some(reserved.as_str()));
    assert_eq!(api.get(&format!("/v1.0/conversations/{reserved}")).await.0, 404);
    // Nothing reached the notify webhook or the watcher.
    let quiet = common::redis::next_within(&mut watcher, Duration::from_millis(600)).await;
    assert_eq!(quiet, None, "a watcher saw the rejected room ({backend:?})");
    assert_eq!(
        notify.requests().len(),
        0,
        "events of a rejected room: {:?}",
        notify.requests().iter().map(|r| r.json()).collect::<Vec<_>>()
    );

    // Allowed later: one fresh room with the message, announced in order.
    reject.store(false, Ordering::SeqCst);
    assert_eq!(crate::channels_phone::sms_from(&srv, &acc, "+14155550123").await, 200);
    let (_, list) = api.get("/v1.0/conversations").await;
    assert_eq!(list["result"].as_array().unwrap().len(), 1, "{list}");
    let room = list["result"][0]["id"].as_str().unwrap().to_string();
    let got = notify.wait_for(3).await;
    let types: Vec<Value> = got.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(
        types,
        json!(["conversation.created", "participant.added", "message.created"]).as_array().unwrap().clone()
    );
    assert!(got.iter().all(|r| r.json()["conversation_id"] == room.as_str()), "{backend:?}");
    let f = common::redis::next_within(&mut watcher, Duration::from_secs(5)).await.expect("a conversation frame");
    assert_eq!((f["event"].as_str(), f["conversation_id"].as_str()), (Some("created"), Some(room.as_str())), "{f}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(of_type(&notify.requests(), "conversation.deleted"), Vec::<Value>::new());
    srv.stop().await;
}

/// Intercept webhooks see private notes too, marked with their visibility.
#[tokio::test]
async fn intercept_sees_private_notes_with_their_visibility() {
    common::on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config()).await;
        let api = srv.api(KEY_A);
        let (url, seen, _) = slow_receiver(|_| (200, r#"{"action":"allow"}"#.into(), 0)).await;
        webhook(&api, json!({"url": url, "mode": "intercept"})).await;
        let c = api.conversation("noted").await;
        let path = format!("/v1.0/conversations/{c}/messages");
        assert_eq!(api.post(&path, json!({"text": "note", "visibility": "internal"})).await.0, 201);
        assert_eq!(api.post(&path, json!({"text": "public"})).await.0, 201);
        let asked: Vec<Value> =
            seen.lock().unwrap().iter().map(|(_, body)| serde_json::from_slice(body).unwrap()).collect();
        assert_eq!(asked.len(), 2, "{backend:?}");
        assert_eq!(
            (asked[0]["data"]["text"].as_str(), asked[0]["data"]["visibility"].as_str()),
            (Some("note"), Some("internal"))
        );
        assert_eq!((asked[1]["data"]["text"].as_str(), asked[1]["data"].get("visibility")), (Some("public"), None));
        srv.stop().await;
    })
    .await;
}
