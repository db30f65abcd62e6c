//! Credentials on API-key-only routes: a valid client or agent token of this server is a real
//! credential the route does not take (403 `forbidden`); garbage is unknown (401).

use crate::common::{KEY_A, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

/// Every route that takes only an API key, with a body it would accept from one.
fn api_key_only_routes(c: &str, p: &str, w: &str, acc: &str) -> Vec<(Method, String, Option<Value>)> {
    let uuid = "00000000-0000-0000-0000-000000000001";
    vec![
        (Method::POST, "/v1.0/conversations".into(), Some(json!({"name": "x"}))),
        (Method::PUT, format!("/v1.0/conversations/{c}"), Some(json!({"name": "y"}))),
        (Method::DELETE, format!("/v1.0/conversations/{c}"), None),
        (Method::POST, format!("/v1.0/conversations/{c}/unassign"), None),
        (
            Method::POST,
            format!("/v1.0/conversations/{c}/participants"),
            Some(json!({"address": {"type": "webchat", "target": "eve"}})),
        ),
        (Method::DELETE, format!("/v1.0/conversations/{c}/participants/{p}"), None),
        (
            Method::POST,
            format!("/v1.0/conversations/{c}/participants/{p}/links"),
            Some(json!({"address": {"type": "webchat", "target": "eve2"}})),
        ),
        // (Posting messages takes operator and agent tokens: `notes_rest`.)
        (Method::POST, "/v1.0/contacts".into(), Some(json!({"name": "x"}))),
        (Method::GET, "/v1.0/contacts".into(), None),
        (Method::GET, format!("/v1.0/contacts/{uuid}"), None),
        (Method::PUT, format!("/v1.0/contacts/{uuid}"), Some(json!({"name": "y"}))),
        (Method::DELETE, format!("/v1.0/contacts/{uuid}?erase=true"), None),
        (Method::POST, format!("/v1.0/contacts/{uuid}/merge"), Some(json!({"contact_id": uuid}))),
        (Method::GET, format!("/v1.0/contacts/{uuid}/conversations"), None),
        (Method::GET, format!("/v1.0/contacts/{uuid}/export"), None),
        (Method::POST, "/v1.0/tokens".into(), Some(json!({"identity": "bob", "all_conversations": true}))),
        (Method::POST, "/v1.0/conversation_accounts".into(), Some(json!({"type": "telegram", "name": "t"}))),
        (Method::GET, "/v1.0/conversation_accounts".into(), None),
        (Method::GET, format!("/v1.0/conversation_accounts/{acc}"), None),
        (Method::PUT, format!("/v1.0/conversation_accounts/{acc}"), Some(json!({"name": "n"}))),
        (Method::DELETE, format!("/v1.0/conversation_accounts/{acc}"), None),
        (Method::POST, "/v1.0/webhooks".into(), Some(json!({"url": "https://93.184.216.34/h"}))),
        (Method::GET, "/v1.0/webhooks".into(), None),
        (Method::GET, format!("/v1.0/webhooks/{w}"), None),
        (Method::PUT, format!("/v1.0/webhooks/{w}"), Some(json!({"description": "d"}))),
        (Method::DELETE, format!("/v1.0/webhooks/{w}"), None),
        (Method::POST, format!("/v1.0/webhooks/{w}/rotate_secret"), None),
        (Method::GET, format!("/v1.0/webhooks/{w}/deliveries"), None),
        (Method::POST, format!("/v1.0/webhooks/{w}/deliveries/{uuid}/redeliver"), None),
    ]
}

#[tokio::test]
async fn tokens_on_api_key_only_routes_are_forbidden_and_garbage_is_unauthorized() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("room").await;
    let p = api.webchat(&c, "alice").await;
    let (s, w) = api.post("/v1.0/webhooks", json!({"url": "https://93.184.216.34/h"})).await;
    assert_eq!(s, 201, "{w}");
    let w = w["id"].as_str().unwrap().to_string();
    let acc = "00000000-0000-0000-0000-000000000002";
    let client = api.token("alice", &[&c]).await;
    let (s, agent) = api.post("/v1.0/tokens", json!({"identity": "ann", "role": "agent"})).await;
    assert_eq!(s, 201, "{agent}");
    let agent = agent["token"].as_str().unwrap().to_string();

    for (method, path, body) in api_key_only_routes(&c, &p, &w, acc) {
        for (who, token) in [("client token", &client), ("agent token", &agent)] {
            let (s, e) = srv.api(token).call(method.clone(), &path, body.clone()).await;
            assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")), "{who} on {method} {path}: {e}");
        }
        for garbage in ["sk_unknown_key_000000000000", "not.a.token", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"] {
            let (s, e) = srv.api(garbage).call(method.clone(), &path, body.clone()).await;
            assert_eq!((s, e["error"]["code"].as_str()), (401, Some("unauthorized")), "{garbage} on {method} {path}");
        }
    }
    srv.stop().await;
}
