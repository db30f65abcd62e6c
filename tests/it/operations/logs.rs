//! No secrets in the logs: a full scenario (REST, WebSocket, refresh, metrics, a bad key and a
//! forged token) run on the real binary logging at `trace`, then its log searched for every secret it used.

use super::{METRICS_TOKEN, send};
use crate::common::channels::twilio_account;
use crate::common::redis::Node;
use crate::common::{self, KEY_A, KEY_B, Ws};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The next frame of `kind`, skipping every other frame.
async fn skip_to(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = ws.next().await;
        if v["type"] == kind {
            return v;
        }
    }
}

// The server runs as users run it: the real binary, its own logging set up from the config at
// `trace`, writing to a file. (An in-process subscriber shares tracing's process-wide callsite
// cache with every other test in this binary, and lost lines under the parallel suite.)
#[tokio::test]
async fn no_secrets_in_logs_of_a_full_scenario() {
    let srv = Node::start_with("redis://127.0.0.1:1", false, |c| {
        c.store.backend = switchboard::config::Backend::Memory;
        c.metrics.token = METRICS_TOKEN.into();
        c.log.filter = "trace".into();
        c.log.format = "human".into();
    })
    .await;
    let http = reqwest::Client::new();
    let res = http.get(srv.url("/v1.0/conversations")).bearer_auth(KEY_A).header("x-request-id", "req-ops-1").send();
    let res = res.await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-ops-1", "the request id is echoed");
    let wrong_key = "sk_not_a_real_key_0123456789";
    assert_eq!(http.get(srv.url("/v1.0/conversations")).bearer_auth(wrong_key).send().await.unwrap().status(), 401);
    let api = srv.api(KEY_A);
    let c = api.conversation("ops").await;
    api.webchat(&c, "alice").await;
    let token = api.token("alice", &[&c]).await;
    let (_, other) = api.post("/v1.0/tokens", json!({"identity": "alice", "conversation_ids": [c]})).await;
    let fresh = other["token"].as_str().unwrap().to_string();
    let mut ws = srv.ws(&token).await;
    ws.subscribe(&c, None).await;
    ws.send(send(&c, "hello", "k1")).await;
    skip_to(&mut ws, "ack").await;
    ws.send(json!({"type": "refresh", "token": fresh})).await;
    skip_to(&mut ws, "refreshed").await;
    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "from the backend"})).await;
    while skip_to(&mut ws, "message").await["message"]["seq"] != 2 {}
    srv.ws("forged.token.value").await.close_code().await;

    // A provider account: its credentials travel in a signed inbound webhook and in the
    // outbound API call's basic auth, and must appear in neither log.
    let auth_token = "twilio-secret-token-7c1e5a9f";
    let stub =
        common::stub::Stub::start(|_, i| common::stub::Answer::status(201, &format!(r#"{{"sid":"SM{i:032}"}}"#))).await;
    let (s, acc) =
        api.post("/v1.0/conversation_accounts", twilio_account("ops", "+15005550006", auth_token, &stub.url)).await;
    assert_eq!(s, 201, "{acc}");
    let url = srv.url(&format!("/v1.0/hooks/twilio/{}", acc["id"].as_str().unwrap()));
    let params: Vec<(String, String)> =
        [("MessageSid", "SM1"), ("From", "+14155550100"), ("To", "+15005550006"), ("Body", "hi")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
    let sig = switchboard::channels::twilio::signature(auth_token, &url, &params);
    let r = http
        .post(&url)
        .header("x-twilio-signature", &sig)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, list) = api.get("/v1.0/conversations?page_size=1").await;
    let sms_room = list["result"][0]["id"].as_str().unwrap().to_string();
    api.post(&format!("/v1.0/conversations/{sms_room}/messages"), json!({"text": "reply"})).await;
    let sent = stub.wait_for(1).await;
    let basic = sent[0].header("authorization").trim_start_matches("Basic ").to_string();
    // An agent account: its invite token, password, session and refresh tokens.
    let password = "pw-never-logged-5b2e9a";
    let agent = crate::agent_accounts::create(&api, "logged@example.com", "agent").await;
    let invite = crate::agent_accounts::invite_token(&agent);
    let anon = srv.api("");
    let (s, accepted) = anon.post("/v1.0/invites/accept", json!({"token": invite, "password": password})).await;
    assert_eq!(s, 201, "{accepted}");
    let wrong_password = "wrong-pw-never-logged-77";
    assert_eq!(
        anon.post("/v1.0/sessions", json!({"email": "logged@example.com", "password": wrong_password})).await.0,
        401
    );
    let (_, session) = anon.post("/v1.0/sessions", json!({"email": "logged@example.com", "password": password})).await;
    let refresh_token = session["refresh_token"].as_str().unwrap().to_string();
    let (_, refreshed) = anon.post("/v1.0/sessions/refresh", json!({"refresh_token": refresh_token})).await;
    let (_, _) = anon.post("/v1.0/sessions/refresh", json!({"refresh_token": refresh_token})).await;
    let session_token = session["token"].as_str().unwrap().to_string();
    let metrics = http.get(srv.url("/metrics")).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    ws.stream.send(Message::Close(None)).await.unwrap();
    drop(ws);
    // Lines are written as they happen; wait (bounded) for the last request's to land.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !srv.log().contains(r#"path="/metrics""#) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let logs = srv.log();
    assert!(logs.contains("req-ops-1"), "the request id is in the request's span:\n{logs}");
    assert!(logs.contains(r#"path="/v1.0/ws""#), "WebSocket requests are logged, by path:\n{logs}");
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_string();
    let secrets = [
        KEY_A.to_string(),
        KEY_B.to_string(),
        wrong_key.to_string(),
        METRICS_TOKEN.to_string(),
        common::SECRET.to_string(),
        token.clone(),
        signature(&token),
        fresh.clone(),
        signature(&fresh),
        auth_token.to_string(),
        sig.clone(),
        basic.clone(),
        password.to_string(),
        wrong_password.to_string(),
        invite.clone(),
        refresh_token.clone(),
        refreshed["refresh_token"].as_str().unwrap().to_string(),
        signature(&session_token),
    ];
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "a secret leaked into the logs: {s}");
    }
}
