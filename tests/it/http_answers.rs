//! How the server answers malformed HTTP: a wrong method gets the JSON error body with its
//! `Allow` header, and every JSON endpoint takes only a JSON object as its body.

use crate::common::{KEY_A, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn wrong_method_is_a_json_405_with_allow() {
    let srv = TestServer::start().await;
    let http = reqwest::Client::new();
    for (method, path, allowed) in [
        (Method::PATCH, "/v1.0/conversations", &["GET", "POST"][..]),
        (Method::DELETE, "/v1.0/tokens", &["POST"][..]),
        (Method::POST, "/healthz", &["GET"][..]),
    ] {
        let r = http.request(method.clone(), srv.url(path)).bearer_auth(KEY_A).send().await.unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        let allow = r.headers().get("allow").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        for m in allowed {
            assert!(allow.contains(m), "{method} {path}: Allow {allow:?} lacks {m}");
        }
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(ct.as_deref(), Some("application/json"), "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn json_bodies_must_be_objects() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let c = api.conversation("room").await;
    let p = api.webchat(&c, "alice").await;
    let (_, w) = api.post("/v1.0/webhooks", json!({"url": "https://93.184.216.34/h"})).await;
    let w = w["id"].as_str().unwrap().to_string();
    let (_, acc) = api
        .post(
            "/v1.0/conversation_accounts",
            json!({"type": "telegram", "provider": "telegram",
        "address": "bot", "credentials": {"bot_token": "1:x"}}),
        )
        .await;
    let acc = acc["id"].as_str().unwrap_or("00000000-0000-0000-0000-000000000002").to_string();
    let endpoints = [
        (Method::POST, "/v1.0/conversations".to_string()),
        (Method::PUT, format!("/v1.0/conversations/{c}")),
        (Method::POST, format!("/v1.0/conversations/{c}/participants")),
        (Method::POST, format!("/v1.0/conversations/{c}/participants/{p}/links")),
        (Method::POST, format!("/v1.0/conversations/{c}/messages")),
        (Method::POST, "/v1.0/tokens".to_string()),
        (Method::POST, "/v1.0/conversation_accounts".to_string()),
        (Method::PUT, format!("/v1.0/conversation_accounts/{acc}")),
        (Method::POST, "/v1.0/webhooks".to_string()),
        (Method::PUT, format!("/v1.0/webhooks/{w}")),
    ];
    for (method, path) in &endpoints {
        for body in [json!(["n", "d", {}]), json!([]), json!("n"), json!(7), json!(null), json!(true)] {
            let (s, e) = api.call(method.clone(), path, Some(body.clone())).await;
            assert_eq!(s, 400, "{method} {path} with {body}: {e}");
            assert!(e["error"]["code"].is_string(), "{e}");
        }
    }
    let (_, list) = api.get("/v1.0/conversations").await;
    let names: Vec<&str> = list["result"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["room"], "no conversation was made from an array");
    srv.stop().await;
}
