//! What a webhook may be created with. The SSRF guard: loopback, private, link-local and
//! metadata addresses, other schemes and credentials in the URL, and the IANA special-purpose
//! ranges (documentation, translation and tunnel prefixes that embed an internal IPv4,
//! discard-only space) are refused on create and update; a public address still passes, and
//! loopback stubs still work when the operator allows private targets. Then the other
//! validation (event names, modes, `on_failure`) and deletion.

use super::*;

#[tokio::test]
async fn special_purpose_and_embedded_ipv4_targets_are_refused() {
    let mut cfg = config();
    cfg.webhooks.allow_private_targets = false;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    let refused = [
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "[2001:db8::1]",
        "[2002:7f00:1::]",
        "[::ffff:0:7f00:1]",
        "[100::1]",
        "[64:ff9b::7f00:1]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
        "[3fff::1]",
        "192.88.99.1",
    ];
    let (hook, _) = webhook(&api, json!({"url": "https://93.184.216.34/hook"})).await;
    for host in refused {
        let url = format!("http://{host}/hook");
        let (s, e) = api.post("/v1.0/webhooks", json!({"url": url})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_url")), "create {url}: {e}");
        let (s, e) = api.put(&format!("/v1.0/webhooks/{hook}"), json!({"url": url})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_url")), "update {url}: {e}");
    }
    for url in ["https://93.184.216.34/hook", "https://[2606:4700:4700::1111]/hook", "http://[::ffff:8.8.8.8]/h"] {
        let (s, e) = api.post("/v1.0/webhooks", json!({"url": url})).await;
        assert_eq!(s, 201, "{url} is public: {e}");
    }
    srv.stop().await;

    // Stubs on loopback keep working where the operator allows private targets.
    let srv = TestServer::start_with(config()).await;
    let (s, e) = srv.api(KEY_A).post("/v1.0/webhooks", json!({"url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(s, 201, "{e}");
    srv.stop().await;
}

#[tokio::test]
async fn ssrf_guard_refuses_internal_targets() {
    let mut cfg = config();
    cfg.webhooks.allow_private_targets = false;
    let srv = TestServer::start_with(cfg).await;
    let api = srv.api(KEY_A);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://93.184.216.34/hook",
        "http://user:pw@93.184.216.34/hook",
        "not a url",
    ] {
        let (s, e) = api.post("/v1.0/webhooks", json!({"url": url})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_url")), "{url}: {e}");
    }
    let (hook, _) = webhook(&api, json!({"url": "https://93.184.216.34/hook"})).await;
    let (s, e) = api.put(&format!("/v1.0/webhooks/{hook}"), json!({"url": "http://127.0.0.1:8080/"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_url")));
    // Other validation.
    for (body, code) in [
        (json!({"url": "https://93.184.216.34/", "events": ["nope"]}), "invalid_events"),
        (json!({"url": "https://93.184.216.34/", "events": []}), "invalid_events"),
        (
            json!({"url": "https://93.184.216.34/", "mode": "intercept", "events": ["message.created"]}),
            "invalid_events",
        ),
        (json!({"url": "https://93.184.216.34/", "on_failure": "reject"}), "invalid_on_failure"),
    ] {
        let (s, e) = api.post("/v1.0/webhooks", body).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some(code)), "{e}");
    }
    assert_eq!(api.delete(&format!("/v1.0/webhooks/{hook}")).await.0, 200);
    assert_eq!(api.get(&format!("/v1.0/webhooks/{hook}")).await.0, 404);
    let (_, doc) = reqwest::get(srv.url("/openapi.json")).await.unwrap().json::<Value>().await.map(|v| (0, v)).unwrap();
    assert!(doc["paths"]["/v1.0/webhooks/{id}/deliveries/{delivery_id}/redeliver"]["post"].is_object());
    srv.stop().await;
}
