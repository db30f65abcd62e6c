//! Agent accounts on both backends: create → invite accept → sign in → the session's token on
//! REST and WebSocket under the agent rules → refresh rotation (a reused refresh token ends the
//! session) → sign out → deleting the agent ends its sessions; wrong passwords and the sign-in
//! rate limits; the admin role's operator token.

use crate::common::{self, Api, BACKENDS, KEY_A, KEY_B, TestServer};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

/// Creates an agent with the API key and answers it (with its `invite_url`).
pub async fn create(api: &Api, email: &str, role: &str) -> Value {
    let (s, v) =
        api.post("/v1.0/agents", json!({"email": email, "name": format!("Agent {email}"), "role": role})).await;
    assert_eq!(s, 201, "{v}");
    v
}

pub fn invite_token(agent: &Value) -> String {
    agent["invite_url"].as_str().unwrap().split("#invite=").nth(1).unwrap().to_string()
}

/// Creates an agent, accepts its invite with [`PASSWORD`]: the session answer.
pub async fn signed_up(srv: &TestServer, key: &str, email: &str, role: &str) -> Value {
    let agent = create(&srv.api(key), email, role).await;
    let (s, v) =
        srv.api("").post("/v1.0/invites/accept", json!({"token": invite_token(&agent), "password": PASSWORD})).await;
    assert_eq!(s, 201, "{v}");
    v
}

pub async fn sign_in(srv: &TestServer, email: &str, password: &str) -> (u16, Value) {
    srv.api("").post("/v1.0/sessions", json!({"email": email, "password": password})).await
}

fn ids(page: &Value) -> Vec<String> {
    page["result"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_agent_signs_up_signs_in_refreshes_and_signs_out() {
    for backend in BACKENDS {
        // More sign-ins than the default allowance per email; the limits have their own test.
        let mut cfg = common::test_config();
        cfg.limits.login_per_email_per_min = 100;
        let srv = TestServer::start_on(backend, cfg).await;
        let op = srv.api(KEY_A);
        let anon = srv.api("");
        let agent = create(&op, " Ann.Lee@Example.com ", "agent").await;
        assert_eq!(agent["email"], "ann.lee@example.com", "{backend:?}");
        assert_eq!(agent["identity"], "ann.lee");
        assert_eq!(
            (agent["role"].as_str(), agent["online"].as_bool(), agent["active"].as_bool()),
            (Some("agent"), Some(false), Some(false))
        );
        let url = agent["invite_url"].as_str().unwrap();
        assert!(url.starts_with(&format!("http://{}/#invite=", srv.addr)), "{url}");
        assert!(agent["invite_expires_at"].is_string());

        // Uniqueness and validation.
        let dup = op.post("/v1.0/agents", json!({"email": "ANN.LEE@example.com", "name": "Other"})).await;
        assert_eq!((dup.0, dup.1["error"]["code"].as_str()), (409, Some("email_taken")), "{dup:?}");
        let dup = op.post("/v1.0/agents", json!({"email": "x@example.com", "name": "X", "identity": "ann.lee"})).await;
        assert_eq!((dup.0, dup.1["error"]["code"].as_str()), (409, Some("identity_taken")));
        for (body, code) in [
            (json!({"email": "not-an-email", "name": "X"}), "invalid_email"),
            (json!({"email": "y@example.com", "name": " "}), "invalid_name"),
            (json!({"email": "y@example.com", "name": "Y", "identity": "Not Valid"}), "invalid_identity"),
            (json!({"email": "y@example.com", "name": "Y", "avatar_url": "javascript:alert(1)"}), "invalid_avatar_url"),
        ] {
            let (s, v) = op.post("/v1.0/agents", body).await;
            assert_eq!((s, v["error"]["code"].as_str()), (422, Some(code)), "{v}");
        }
        // The email freed by the failed identity claim is still free.
        create(&op, "x@example.com", "agent").await;
        assert_eq!(srv.api(KEY_B).get(&format!("/v1.0/agents/{}", agent["id"].as_str().unwrap())).await.0, 404);

        // No password yet: sign-in fails like a wrong password.
        let (s, v) = sign_in(&srv, "ann.lee@example.com", PASSWORD).await;
        assert_eq!((s, v["error"]["code"].as_str()), (401, Some("invalid_credentials")));

        // The invite: a weak password is refused and leaves the link usable; it works once.
        let token = invite_token(&agent);
        let (s, v) = anon.post("/v1.0/invites/accept", json!({"token": token, "password": "short"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("weak_password")));
        let (s, first) = anon.post("/v1.0/invites/accept", json!({"token": token, "password": PASSWORD})).await;
        assert_eq!(s, 201, "{first}");
        assert_eq!(first["agent"]["active"], true);
        let (s, v) = anon.post("/v1.0/invites/accept", json!({"token": token, "password": PASSWORD})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (410, Some("invite_invalid")), "an invite works once");

        // Wrong password and unknown email: the same answer.
        let wrong = sign_in(&srv, "ann.lee@example.com", "not the password").await;
        let unknown = sign_in(&srv, "nobody@example.com", PASSWORD).await;
        assert_eq!(wrong, unknown, "no way to tell an unknown email from a wrong password");
        assert_eq!((wrong.0, wrong.1["error"]["code"].as_str()), (401, Some("invalid_credentials")));

        let (s, session) = sign_in(&srv, "Ann.Lee@example.com", PASSWORD).await;
        assert_eq!(s, 201, "{session}");
        assert_eq!(session["agent"]["identity"], "ann.lee");
        let token = session["token"].as_str().unwrap().to_string();

        // The token is an agent token: own and unassigned conversations only.
        let (free, theirs) = (op.conversation("free").await, op.conversation("theirs").await);
        op.put(&format!("/v1.0/conversations/{theirs}"), json!({"owner_id": "ben"})).await;
        let me = srv.api(&token);
        let (s, page) = me.get("/v1.0/conversations").await;
        assert_eq!((s, ids(&page)), (200, vec![free.clone()]), "{page}");
        assert_eq!(me.get(&format!("/v1.0/conversations/{theirs}")).await.0, 403);
        assert_eq!(
            me.post("/v1.0/agents", json!({"email": "z@example.com", "name": "Z"})).await.0,
            403,
            "writes need the API key"
        );
        let mut ws = srv.ws(&token).await;
        ws.subscribe(&free, None).await;
        ws.send(json!({"type": "subscribe", "conversation_id": theirs})).await;
        assert_eq!(ws.next_of("error").await["code"], "forbidden");
        ws.send(json!({"type": "send", "conversation_id": free, "text": "hello", "client_id": "c1"})).await;
        ws.next_of("ack").await;
        // The picker: the agent is listed, online while its WebSocket is open.
        let (s, list) = me.get("/v1.0/agents").await;
        assert_eq!(s, 200, "{list}");
        let ann = list["result"].as_array().unwrap().iter().find(|a| a["identity"] == "ann.lee").unwrap().clone();
        assert_eq!(ann["online"], true, "{list}");
        assert!(ann.get("invite_url").is_none(), "lists never show invite links");

        // Refresh rotates; the old refresh token is refused, and its reuse ends the session.
        let r1 = session["refresh_token"].as_str().unwrap().to_string();
        let (s, second) = anon.post("/v1.0/sessions/refresh", json!({"refresh_token": r1})).await;
        assert_eq!(s, 201, "{second}");
        let r2 = second["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(r1, r2);
        assert_eq!(srv.api(second["token"].as_str().unwrap()).get("/v1.0/conversations").await.0, 200);
        let (s, v) = anon.post("/v1.0/sessions/refresh", json!({"refresh_token": r1})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (401, Some("invalid_refresh")));
        assert_eq!(
            anon.post("/v1.0/sessions/refresh", json!({"refresh_token": r2})).await.0,
            401,
            "the family is revoked"
        );
        assert_eq!(me.get("/v1.0/conversations").await.0, 401, "and so are its access tokens");
        // The session's open WebSocket closes at once; another cannot adopt its token.
        assert_eq!(ws.close_code().await, 4001, "the ended session's WebSocket closes");
        let minted = op.post("/v1.0/tokens", json!({"identity": "ann.lee", "role": "agent"})).await.1;
        let mut ws = srv.ws(minted["token"].as_str().unwrap()).await;
        ws.send(json!({"type": "refresh", "token": second["token"]})).await;
        let e = loop {
            let f = ws.next().await;
            if f["type"] == "error" || f["type"] == "refreshed" {
                break f;
            }
        };
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("invalid_token")), "{e}");

        // Sign out: with the body, then with the bearer header.
        for by_header in [false, true] {
            let (_, s2) = sign_in(&srv, "ann.lee@example.com", PASSWORD).await;
            let rt = s2["refresh_token"].as_str().unwrap();
            let status = if by_header {
                srv.api(rt).delete("/v1.0/sessions").await.0
            } else {
                anon.call(reqwest::Method::DELETE, "/v1.0/sessions", Some(json!({"refresh_token": rt}))).await.0
            };
            assert_eq!(status, 204);
            assert_eq!(anon.post("/v1.0/sessions/refresh", json!({"refresh_token": rt})).await.0, 401);
            assert_eq!(srv.api(s2["token"].as_str().unwrap()).get("/v1.0/conversations").await.0, 401);
            let mut dead = srv.ws(s2["token"].as_str().unwrap()).await;
            assert_eq!(dead.close_code().await, 4001, "a signed-out session's token opens no WebSocket");
        }
        assert_eq!(anon.delete("/v1.0/sessions").await.0, 400, "nothing to sign out");

        // A new invite kills the old link; deleting the agent ends every session.
        let (_, s3) = sign_in(&srv, "ann.lee@example.com", PASSWORD).await;
        let id = agent["id"].as_str().unwrap();
        let (s, again) = op.post(&format!("/v1.0/agents/{id}/invite"), json!({})).await;
        assert_eq!(s, 200, "{again}");
        assert_eq!(op.delete(&format!("/v1.0/agents/{id}")).await.0, 204);
        assert_eq!(op.get(&format!("/v1.0/agents/{id}")).await.0, 404);
        assert_eq!(srv.api(s3["token"].as_str().unwrap()).get("/v1.0/conversations").await.0, 401);
        let r3 = s3["refresh_token"].as_str().unwrap();
        assert_eq!(anon.post("/v1.0/sessions/refresh", json!({"refresh_token": r3})).await.0, 401);
        assert_eq!(sign_in(&srv, "ann.lee@example.com", PASSWORD).await.0, 401);
        let (s, _) =
            anon.post("/v1.0/invites/accept", json!({"token": invite_token(&again), "password": PASSWORD})).await;
        assert_eq!(s, 410, "a deleted agent's invite is dead");
        srv.stop().await;
    }
}

#[tokio::test]
async fn admins_get_an_operator_token_and_agents_can_be_changed() {
    for backend in BACKENDS {
        let srv = TestServer::start_on(backend, common::test_config()).await;
        let op = srv.api(KEY_A);
        let session = signed_up(&srv, KEY_A, "boss@example.com", "admin").await;
        let admin = srv.api(session["token"].as_str().unwrap());
        let c = op.conversation("someone else's").await;
        op.put(&format!("/v1.0/conversations/{c}"), json!({"owner_id": "ben"})).await;
        let (s, page) = admin.get("/v1.0/conversations").await;
        assert_eq!((s, ids(&page)), (200, vec![c.clone()]), "{backend:?}: an admin sees every conversation");
        let (s, v) = admin.put(&format!("/v1.0/conversations/{c}"), json!({"owner_id": "boss"})).await;
        assert_eq!((s, v["owner_id"].as_str()), (200, Some("boss")), "{v}");

        // PATCH: name, avatar; a role change ends the sessions (their tokens carry the role).
        let id = session["agent"]["id"].as_str().unwrap();
        let path = format!("/v1.0/agents/{id}");
        let (s, v) = op
            .call(
                reqwest::Method::PATCH,
                &path,
                Some(json!({"name": "The Boss", "avatar_url": "https://x.example/a.png"})),
            )
            .await;
        assert_eq!(
            (s, v["name"].as_str(), v["avatar_url"].as_str()),
            (200, Some("The Boss"), Some("https://x.example/a.png"))
        );
        assert_eq!(admin.get("/v1.0/conversations").await.0, 200, "a name change keeps the session");
        let (s, v) = op.call(reqwest::Method::PATCH, &path, Some(json!({"role": "agent", "avatar_url": null}))).await;
        assert_eq!((s, v["role"].as_str(), v["avatar_url"].is_null()), (200, Some("agent"), true), "{v}");
        assert_eq!(admin.get("/v1.0/conversations").await.0, 401);
        let (s, v) = op.call(reqwest::Method::PATCH, &path, Some(json!({"email": "new@example.com"}))).await;
        assert_eq!(s, 400, "the email never changes: {v}");
        srv.stop().await;
    }
}

async fn status_and_retry_after(srv: &TestServer, email: &str) -> (u16, Option<String>) {
    let res = reqwest::Client::new()
        .post(srv.url("/v1.0/sessions"))
        .json(&json!({"email": email, "password": "wrong password!"}))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()))
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_email_and_per_address() {
    let mut cfg = common::test_config();
    cfg.limits.login_per_email_per_min = 3;
    cfg.limits.login_per_address_per_min = 7;
    let srv = TestServer::start_with(cfg).await;
    signed_up(&srv, KEY_A, "ann@example.com", "agent").await;
    for _ in 0..3 {
        assert_eq!(status_and_retry_after(&srv, "ann@example.com").await.0, 401);
    }
    let (s, retry) = status_and_retry_after(&srv, "ANN@example.com").await;
    assert_eq!(s, 429, "the fourth try on one email within a minute");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(sign_in(&srv, "ann@example.com", PASSWORD).await.0, 429, "even the right password waits");
    // Other emails from the same address: the address allowance (7) runs out too.
    assert_eq!(status_and_retry_after(&srv, "b@example.com").await.0, 401);
    let (s, retry) = status_and_retry_after(&srv, "c@example.com").await;
    assert_eq!((s, retry.is_some()), (429, true), "the eighth try from one address (the invite accept counted too)");
    srv.stop().await;
}
