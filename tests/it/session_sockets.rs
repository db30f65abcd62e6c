//! Ending an agent's sign-in session closes its open WebSockets at once (4001), on both
//! backends and across nodes: signing out, a reused refresh token, the agent deleted, its role
//! or its password changed. A connection of another session, or minted with an API key, stays.
//! Should the signal be lost, the connection notices at its next ping. Across nodes on one
//! Redis server and on a Redis Cluster (sharded pub/sub).
//! And the records of expired or ended sessions do not pile up: with a short
//! `auth.refresh_ttl_secs` the refresh token's and the session's records are gone after it
//! (Redis: keys with a TTL, then no key at all).

use crate::agent_accounts::{PASSWORD, invite_token, sign_in, signed_up};
use crate::common::redis::{RedisCluster, RedisServer, wait_until};
use crate::common::{self, Backend, KEY_A, TestServer, Ws};
use serde_json::{Value, json};
use std::time::Duration;

fn config() -> switchboard::Config {
    let mut c = common::test_config();
    // More sign-ins than the default allowance per email; the limits have their own test.
    c.limits.login_per_email_per_min = 100;
    c
}

fn token(session: &Value) -> &str {
    session["token"].as_str().unwrap()
}

/// A socket of `session`'s token that works: subscribed to `room`.
async fn live_socket(srv: &TestServer, session: &Value, room: &str) -> Ws {
    let mut ws = srv.ws(token(session)).await;
    ws.subscribe(room, None).await;
    ws
}

async fn sign_out(srv: &TestServer, session: &Value) {
    let (s, v) = srv.api(session["refresh_token"].as_str().unwrap()).delete("/v1.0/sessions").await;
    assert_eq!(s, 204, "{v}");
}

/// The socket still answers: a `subscribe` gets its `subscribed`.
async fn still_works(ws: &mut Ws, room: &str) {
    assert_eq!(ws.subscribe(room, None).await["conversation_id"], room);
}

#[tokio::test]
async fn an_ended_session_closes_its_open_sockets() {
    for backend in common::BACKENDS {
        let srv = TestServer::start_on(backend, config()).await;
        let op = srv.api(KEY_A);
        let room = op.conversation("free").await;
        let first = signed_up(&srv, KEY_A, "ann@example.com", "agent").await;
        let ann_id = first["agent"]["id"].as_str().unwrap().to_string();
        let ben = signed_up(&srv, KEY_A, "ben@example.com", "agent").await;
        let mut ben_ws = live_socket(&srv, &ben, &room).await;
        let minted = op.post("/v1.0/tokens", json!({"identity": "ann", "role": "agent"})).await.1;
        let mut minted_ws = srv.ws(minted["token"].as_str().unwrap()).await;
        minted_ws.subscribe(&room, None).await;

        // Signing out closes the session's two sockets; another session of Ann's stays.
        let (s, second) = sign_in(&srv, "ann@example.com", PASSWORD).await;
        assert_eq!(s, 201, "{second}");
        let (mut a1, mut a2) = (live_socket(&srv, &first, &room).await, live_socket(&srv, &first, &room).await);
        let mut other = live_socket(&srv, &second, &room).await;
        sign_out(&srv, &first).await;
        assert_eq!((a1.close_code().await, a2.close_code().await), (4001, 4001), "{backend:?}: sign-out");
        still_works(&mut other, &room).await;

        // A refresh token used twice ends its session: the socket closes.
        let rt = second["refresh_token"].as_str().unwrap();
        assert_eq!(srv.api("").post("/v1.0/sessions/refresh", json!({"refresh_token": rt})).await.0, 201);
        assert_eq!(srv.api("").post("/v1.0/sessions/refresh", json!({"refresh_token": rt})).await.0, 401);
        assert_eq!(other.close_code().await, 4001, "{backend:?}: reuse");

        // A role change ends every session of the agent.
        let (s3, s4) =
            (sign_in(&srv, "ann@example.com", PASSWORD).await.1, sign_in(&srv, "ann@example.com", PASSWORD).await.1);
        let (mut w3, mut w4) = (live_socket(&srv, &s3, &room).await, live_socket(&srv, &s4, &room).await);
        let (s, v) =
            op.call(reqwest::Method::PATCH, &format!("/v1.0/agents/{ann_id}"), Some(json!({"role": "admin"}))).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!((w3.close_code().await, w4.close_code().await), (4001, 4001), "{backend:?}: role change");

        // A new password (a fresh invite accepted) ends the older sessions, not the new one.
        let older = sign_in(&srv, "ann@example.com", PASSWORD).await.1;
        let mut w5 = live_socket(&srv, &older, &room).await;
        let invited = op.post(&format!("/v1.0/agents/{ann_id}/invite"), json!({})).await.1;
        let (s, newer) = srv
            .api("")
            .post("/v1.0/invites/accept", json!({"token": invite_token(&invited), "password": "another good password"}))
            .await;
        assert_eq!(s, 201, "{newer}");
        assert_eq!(w5.close_code().await, 4001, "{backend:?}: password change");
        let mut w6 = live_socket(&srv, &newer, &room).await;

        // Deleting the agent closes the rest.
        assert_eq!(op.delete(&format!("/v1.0/agents/{ann_id}")).await.0, 204);
        assert_eq!(w6.close_code().await, 4001, "{backend:?}: agent deleted");

        // Nobody else was touched: Ben's session and the API-minted token still work.
        still_works(&mut ben_ws, &room).await;
        still_works(&mut minted_ws, &room).await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_session_ended_on_one_node_closes_its_socket_on_another() {
    let redis = RedisServer::start().await;
    across_nodes(&redis.url(), false).await;
}

#[tokio::test]
async fn a_session_ended_on_one_node_closes_its_socket_on_another_on_a_cluster() {
    let cluster = RedisCluster::start().await;
    across_nodes(&cluster.url(), true).await;
}

/// Two nodes on one Redis (`cluster`: a Redis Cluster, sharded pub/sub).
async fn across_nodes(url: &str, cluster: bool) {
    let on_redis = || {
        let mut c = config();
        c.store.backend = switchboard::config::Backend::Redis;
        c.redis.url = url.to_string();
        c.redis.cluster = cluster;
        c
    };
    let (a, b) = (TestServer::start_with(on_redis()).await, TestServer::start_with(on_redis()).await);
    let room = a.api(KEY_A).conversation("free").await;
    let session = signed_up(&a, KEY_A, "ann@example.com", "agent").await;
    let kept = sign_in(&a, "ann@example.com", PASSWORD).await.1;
    let mut on_b = live_socket(&b, &session, &room).await;
    let mut kept_on_b = live_socket(&b, &kept, &room).await;
    sign_out(&a, &session).await;
    assert_eq!(on_b.close_code().await, 4001, "signed out on node A, closed on node B");
    still_works(&mut kept_on_b, &room).await;
    // And the other way round, for a deleted agent.
    let mut on_a = live_socket(&a, &kept, &room).await;
    assert_eq!(b.api(KEY_A).delete(&format!("/v1.0/agents/{}", session["agent"]["id"].as_str().unwrap())).await.0, 204);
    assert_eq!((on_a.close_code().await, kept_on_b.close_code().await), (4001, 4001), "deleted on node B");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_lost_session_end_signal_is_caught_at_the_next_ping() {
    for backend in common::BACKENDS {
        let mut cfg = config();
        cfg.ws.ping_interval_secs = 1;
        let srv = TestServer::start_on(backend, cfg).await;
        let room = srv.api(KEY_A).conversation("free").await;
        let session = signed_up(&srv, KEY_A, "ann@example.com", "agent").await;
        let mut ws = live_socket(&srv, &session, &room).await;
        // The session's record goes without the broker hearing of it (as in a pub/sub outage).
        let sid = srv.state.tokens.verify(token(&session)).unwrap().sid.unwrap();
        srv.state.records.remove(&format!("session:{sid}"), "v").await.unwrap();
        assert_eq!(ws.close_code().await, 4001, "{backend:?}");
        srv.stop().await;
    }
}

fn refresh_ns(refresh_token: &str) -> String {
    format!("refresh:{}", switchboard::auth::hash_api_key(refresh_token))
}

#[tokio::test]
async fn the_records_of_expired_sessions_are_swept() {
    for backend in common::BACKENDS {
        let mut cfg = config();
        cfg.auth.refresh_ttl_secs = 2;
        let srv = TestServer::start_on(backend, cfg).await;
        let first = signed_up(&srv, KEY_A, "ann@example.com", "agent").await;
        let family = {
            // The session id is the access token's `sid` claim.
            let claims = srv.state.tokens.verify(token(&first)).unwrap();
            claims.sid.unwrap()
        };
        let rt = first["refresh_token"].as_str().unwrap();
        let (s, second) = srv.api("").post("/v1.0/sessions/refresh", json!({"refresh_token": rt})).await;
        assert_eq!(s, 201, "{second}");
        let records = srv.state.records.clone();
        let ns = [refresh_ns(rt), refresh_ns(second["refresh_token"].as_str().unwrap()), format!("session:{family}")];
        for n in &ns {
            assert!(records.get(n, "v").await.unwrap().is_some(), "{backend:?}: {n} is there while the session lives");
        }
        if backend == Backend::Redis {
            let mut c = srv.redis.as_ref().unwrap().connection().await;
            for n in &ns {
                let ttl: i64 =
                    redis::cmd("PTTL").arg(format!("switchboard:rec:{n}")).query_async(&mut c).await.unwrap();
                assert!(ttl > 0 && ttl <= 2000, "{n} has the refresh lifetime as its TTL: {ttl}");
            }
        }

        // Nobody refreshes: after the lifetime, the session is over and its records are gone.
        wait_until(Duration::from_secs(10), "the session's records to expire", || {
            let (records, ns) = (records.clone(), ns.clone());
            async move {
                for n in &ns {
                    if records.get(n, "v").await.unwrap().is_some() {
                        return false;
                    }
                }
                true
            }
        })
        .await;
        let (s, v) =
            srv.api("").post("/v1.0/sessions/refresh", json!({"refresh_token": second["refresh_token"]})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (401, Some("invalid_refresh")), "{backend:?}");
        assert_eq!(srv.api(token(&second)).get("/v1.0/conversations").await.0, 401, "the session's access token died");
        if backend == Backend::Redis {
            let mut c = srv.redis.as_ref().unwrap().connection().await;
            let keys: Vec<String> = redis::cmd("KEYS").arg("switchboard:rec:*ess*").query_async(&mut c).await.unwrap();
            let refresh: Vec<String> =
                redis::cmd("KEYS").arg("switchboard:rec:refresh:*").query_async(&mut c).await.unwrap();
            assert!(keys.is_empty() && refresh.is_empty(), "no session or refresh key is left: {keys:?} {refresh:?}");
        }
        // A new sign-in prunes the agent's list of the expired family.
        let (s, third) = sign_in(&srv, "ann@example.com", PASSWORD).await;
        assert_eq!(s, 201, "{third}");
        let agent = third["agent"]["id"].as_str().unwrap();
        let tenant = third["tenant_id"].as_str().unwrap();
        let families = records.all(&format!("agent_sessions:{tenant}:{agent}")).await.unwrap();
        assert_eq!(families.len(), 1, "{backend:?}: only the live session is listed: {families:?}");
        srv.stop().await;
    }
}
