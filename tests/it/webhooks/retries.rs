//! One webhook delivery's life: retried after 5xx and 429 until it succeeds, failed at once on
//! another 4xx, dead after the retry horizon and then redelivered by hand (same event id), and
//! signed by both the rotated secret and the previous one during the grace period.

use super::*;

#[tokio::test]
async fn retries_after_5xx_then_success_and_4xx_fails_at_once() {
    let srv = TestServer::start_with(config()).await;
    let api = srv.api(KEY_A);
    let stub = ok_stub().await;
    let (hook, secret) = webhook(&api, json!({"url": stub.url, "events": ["conversation.created"]})).await;
    stub.script([
        Answer::status(500, "oops"),
        Answer { status: 429, headers: vec![], body: "slow down".into() },
        Answer::status(503, "down"),
    ]);
    let c = api.conversation("retry").await;
    let reqs = stub.wait_for(4).await;
    let evs: Vec<Value> = reqs.iter().map(|r| check(r, &secret)).collect();
    assert!(evs.iter().all(|e| e["data"]["id"] == c.as_str()));
    assert!(reqs.windows(2).all(|w| w[0].body == w[1].body), "identical body on every attempt");
    let d = eventually(|| async {
        deliveries(&api, &hook).await.into_iter().next().filter(|d| d["status"] == "delivered")
    })
    .await;
    let codes: Vec<u64> =
        d["attempts"].as_array().unwrap().iter().map(|a| a["status_code"].as_u64().unwrap()).collect();
    assert_eq!(codes, [500, 429, 503, 200]);
    assert_eq!(d["attempt_count"], 4);
    assert_eq!(d["event_id"], evs[0]["id"]);

    // 400: failed after one attempt, no retry.
    stub.script([Answer::status(400, "no thanks")]);
    api.conversation("refused").await;
    let d =
        eventually(|| async { deliveries(&api, &hook).await.into_iter().next().filter(|d| d["status"] == "failed") })
            .await;
    assert_eq!(d["attempt_count"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stub.requests().len(), 5);
    srv.stop().await;
}

#[tokio::test]
async fn dead_after_the_horizon_then_redelivered() {
    let mut cfg = config();
    cfg.webhooks.retry_horizon_secs = 1;
    cfg.webhooks.retry_base_ms = 50;
    cfg.webhooks.retry_max_ms = 200;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let stub = Stub::start(move |_, _| {
        if flag.load(Ordering::SeqCst) { Answer::status(204, "") } else { Answer::status(502, "bad gateway") }
    })
    .await;
    let (hook, secret) = webhook(&api, json!({"url": stub.url, "events": ["conversation.created"]})).await;
    api.conversation("doomed").await;
    let started = Instant::now();
    let d = eventually(|| async { deliveries(&api, &hook).await.into_iter().next().filter(|d| d["status"] == "dead") })
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(d["attempt_count"].as_u64().unwrap() >= 3, "{d}");
    assert!(d.get("next_retry_at").is_none());
    let sent = stub.requests().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(stub.requests().len(), sent, "no attempts after dead");

    // Redeliver: same event id, delivered now that the endpoint is back.
    up.store(true, Ordering::SeqCst);
    let path = format!("/v1.0/webhooks/{hook}/deliveries/{}/redeliver", d["id"].as_str().unwrap());
    assert_eq!(srv.api(KEY_B).post(&path, json!({})).await.0, 404, "other tenant");
    let (s, r) = api.post(&path, json!({})).await;
    assert_eq!((s, r["status"].as_str()), (202, Some("pending")), "{r}");
    let d2 = eventually(|| async {
        deliveries(&api, &hook).await.into_iter().next().filter(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!((d2["id"].clone(), d2["event_id"].clone()), (d["id"].clone(), d["event_id"].clone()));
    let last = stub.requests().pop().unwrap();
    assert_eq!(check(&last, &secret)["id"], d["event_id"]);
    let missing = format!("/v1.0/webhooks/{hook}/deliveries/{}/redeliver", uuid::Uuid::now_v7());
    assert_eq!(api.post(&missing, json!({})).await.0, 404);
    srv.stop().await;
}

#[tokio::test]
async fn rotated_secret_and_the_previous_one_both_sign_during_the_grace_period() {
    let mut cfg = config();
    cfg.webhooks.secret_grace_secs = 3;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let stub = ok_stub().await;
    let (hook, old) = webhook(&api, json!({"url": stub.url, "events": ["conversation.created"]})).await;
    let (s, r) = api.post(&format!("/v1.0/webhooks/{hook}/rotate_secret"), json!({})).await;
    assert_eq!(s, 200, "{r}");
    let new = r["secret"].as_str().unwrap().to_string();
    assert!(new != old && r["previous_secret_expires_at"].is_string());
    api.conversation("during grace").await;
    let req = &stub.wait_for(1).await[0];
    check(req, &new);
    check(req, &old);
    assert_eq!(parse_signature(req.header("switchboard-signature")).1.len(), 2);

    tokio::time::sleep(Duration::from_millis(3200)).await;
    api.conversation("after grace").await;
    let req = &stub.wait_for(2).await[1];
    check(req, &new);
    let (t, v1) = parse_signature(req.header("switchboard-signature"));
    assert_eq!(v1, [expected(&new, t, &req.body)], "the old secret no longer signs");
    srv.stop().await;
}
