//! The website widget's server side (issue 17): website accounts (`provider: web`), and
//! `POST /v1.0/widget/sessions` / `POST /v1.0/widget/messages` as a browser on the customer's
//! site calls them — with an `Origin`, a public key and no API key. Both backends: origins
//! refused (and CORS headers only for allowed ones), identity proofs accepted and forged ones
//! refused, one contact for a known user on every device, no conversation before the first
//! message, resolved and closed rooms, and the per-address rate limit.

use crate::common::{Api, KEY_A, TestServer, on_every_backend, test_config};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SITE: &str = "http://127.0.0.2:8123";
const SECRET: &str = "identity-secret-of-the-shop-0123";

/// The site's backend: hex HMAC-SHA256 of the identifier under the identity secret.
fn sign(identifier: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(identifier.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a website account for [`SITE`]; returns the account as the API shows it.
async fn website(api: &Api) -> Value {
    let (s, a) = api
        .post(
            "/v1.0/conversation_accounts",
            json!({"type": "webchat", "provider": "web", "name": "Shop",
                   "credentials": {"identity_secret": SECRET},
                   "widget": {"allowed_origins": [SITE],
                              "branding": {"name": "Shop support", "colour": "#0a7d33", "greeting": "Hi there!"},
                              "prechat": {"name": "required", "email": "optional"}}}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    a
}

/// A widget call as a page of `origin` makes it: status, body, the CORS header it got.
async fn call(srv: &TestServer, path: &str, origin: &str, body: Value) -> (u16, Value, Option<String>) {
    let key = body["key"].as_str().unwrap_or_default().to_string();
    let res = reqwest::Client::new()
        .post(srv.url(&format!("{path}?key={key}")))
        .header("origin", origin)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let cors = res.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), cors)
}

async fn session(srv: &TestServer, key: &str, extra: Value) -> Value {
    let mut body = json!({"key": key});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (s, v, cors) = call(srv, "/v1.0/widget/sessions", SITE, body).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(cors.as_deref(), Some(SITE));
    v
}

async fn say(srv: &TestServer, key: &str, visitor: &str, text: &str) -> Value {
    let body = json!({"key": key, "visitor_token": visitor, "text": text});
    let (s, v, _) = call(srv, "/v1.0/widget/messages", SITE, body).await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn conversation_count(api: &Api) -> usize {
    let (s, page) = api.get("/v1.0/conversations?page_size=100").await;
    assert_eq!(s, 200, "{page}");
    page["result"].as_array().unwrap().len()
}

#[tokio::test]
async fn website_account_keeps_its_secret_and_checks_its_settings() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let a = website(&api).await;
    let key = a["widget"]["public_key"].as_str().unwrap();
    assert!(key.starts_with("pk_") && key.len() > 40, "{a}");
    assert_eq!(a["credentials_set"], json!(["identity_secret"]));
    let (_, got) = api.get(&format!("/v1.0/conversation_accounts/{}", a["id"].as_str().unwrap())).await;
    assert!(!got.to_string().contains(SECRET), "the identity secret leaked: {got}");
    assert_eq!(got["widget"]["public_key"], key);
    // The script tag's files: JavaScript, loadable as modules from any origin.
    for path in ["/widget.js", "/widget/app.js", "/widget/ui.js", "/sdk/index.js"] {
        let res = reqwest::Client::new().get(srv.url(path)).header("origin", SITE).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let h = res.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with("text/javascript"), "{path}: {:?}", h["content-type"]);
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
    }
    for (widget, code) in [
        (json!({"allowed_origins": ["https://shop.example.com/path"]}), "invalid_origin"),
        (json!({"allowed_origins": []}), "invalid_widget"),
        (json!({"allowed_origins": [SITE], "branding": {"colour": "green"}}), "invalid_colour"),
    ] {
        let body = json!({"type": "webchat", "provider": "web", "credentials": {}, "widget": widget});
        let (s, e) = api.post("/v1.0/conversation_accounts", body).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some(code)), "{e}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn sessions_check_origin_identity_and_open_no_room_before_the_first_message() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, test_config()).await;
        let api = srv.api(KEY_A);
        let key = website(&api).await["widget"]["public_key"].as_str().unwrap().to_string();

        // Another site's page: refused, and no CORS header lets it read anything.
        let (s, e, cors) = call(&srv, "/v1.0/widget/sessions", "https://evil.example", json!({"key": key})).await;
        assert_eq!(s, 403, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("https://evil.example"), "{e}");
        assert_eq!(cors, None);
        // The preflight: answered for the account's origin only.
        let preflight = |origin: &'static str| {
            reqwest::Client::new()
                .request(reqwest::Method::OPTIONS, srv.url(&format!("/v1.0/widget/sessions?key={key}")))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
        };
        let ok = preflight(SITE).await.unwrap();
        assert_eq!(ok.status(), 204);
        assert_eq!(ok.headers()["access-control-allow-origin"], SITE);
        assert!(ok.headers()["access-control-allow-headers"].to_str().unwrap().contains("content-type"));
        let no = preflight("https://evil.example").await.unwrap();
        assert_eq!(no.status(), 403);
        assert!(no.headers().get("access-control-allow-origin").is_none());
        // An unknown key.
        let (s, _, _) = call(&srv, "/v1.0/widget/sessions", SITE, json!({"key": "pk_nope"})).await;
        assert_eq!(s, 404);

        // An anonymous visitor: a session, a contact, branding, and no conversation.
        let anon = session(&srv, &key, json!({"name": "Ann"})).await;
        assert_eq!(anon["conversation"], Value::Null);
        assert_eq!(anon["verified"], false);
        assert_eq!(anon["contact"]["name"], "Ann");
        assert_eq!(anon["branding"]["name"], "Shop support");
        assert_eq!(anon["prechat"]["name"], "required");
        assert_eq!(anon["agents_online"], false);
        assert_eq!(conversation_count(&api).await, 0, "a page view opened a conversation");
        // Coming back with the visitor token: the same visitor.
        let back = session(&srv, &key, json!({"visitor_token": anon["visitor_token"]})).await;
        assert_eq!((&back["identity"], &back["contact"]["id"]), (&anon["identity"], &anon["contact"]["id"]));
        assert_eq!(conversation_count(&api).await, 0);
        // The visitor token is no key to rooms.
        let (s, _) = api.get("/v1.0/conversations").await;
        assert_eq!(s, 200);

        // The first message opens the room; the answer's token reaches it over the WebSocket.
        let first = say(&srv, &key, anon["visitor_token"].as_str().unwrap(), "Where is my order?").await;
        let room = first["conversation"]["id"].as_str().unwrap().to_string();
        assert_eq!(first["message"]["text"], "Where is my order?");
        assert_eq!(conversation_count(&api).await, 1);
        let mut ws = srv.ws(first["token"].as_str().unwrap()).await;
        let sub = ws.subscribe(&room, Some(0)).await;
        assert_eq!(sub["type"], "subscribed", "{sub}");
        let m = ws.next_of("message").await;
        assert_eq!(m["message"]["text"], "Where is my order?", "{m}");
        // The next session names the room and its people by display name only.
        let again = session(&srv, &key, json!({"visitor_token": anon["visitor_token"]})).await;
        assert_eq!(again["conversation"]["id"], room.as_str());
        assert_eq!(again["conversation"]["people"][0]["kind"], "visitor");

        // A resolved room opens again on the visitor's message; a closed one starts a new room.
        let (s, c) = api.put(&format!("/v1.0/conversations/{room}"), json!({"status": "resolved"})).await;
        assert_eq!(s, 200, "{c}");
        let r = say(&srv, &key, anon["visitor_token"].as_str().unwrap(), "Still there?").await;
        assert_eq!(
            (r["conversation"]["id"].as_str(), r["conversation"]["status"].as_str()),
            (Some(room.as_str()), Some("open"))
        );
        let (s, c) = api.put(&format!("/v1.0/conversations/{room}"), json!({"status": "closed"})).await;
        assert_eq!(s, 200, "{c}");
        let ended = session(&srv, &key, json!({"visitor_token": anon["visitor_token"]})).await;
        assert_eq!(ended["conversation"]["status"], "closed");
        let n = say(&srv, &key, anon["visitor_token"].as_str().unwrap(), "Another question").await;
        assert_ne!(n["conversation"]["id"].as_str(), Some(room.as_str()));
        assert_eq!(conversation_count(&api).await, 2);

        // A known user: the same contact and room on two devices (no visitor token shared).
        let hash = sign("customer-42", SECRET);
        let laptop = session(
            &srv,
            &key,
            json!({"identifier": "customer-42", "identifier_hash": hash, "email": "c42@example.com"}),
        )
        .await;
        assert_eq!(laptop["verified"], true);
        let said = say(&srv, &key, laptop["visitor_token"].as_str().unwrap(), "Hello from my laptop").await;
        let phone =
            session(&srv, &key, json!({"identifier": "customer-42", "identifier_hash": hash.to_uppercase()})).await;
        assert_eq!(phone["contact"]["id"], laptop["contact"]["id"]);
        assert_eq!(phone["contact"]["email"], "c42@example.com");
        assert_eq!(phone["conversation"]["id"], said["conversation"]["id"]);
        assert_ne!(phone["contact"]["id"], anon["contact"]["id"]);
        // A forged hash is refused, with a body saying why; so is one with no hash.
        let forged = sign("customer-42", "not-the-secret");
        let body = json!({"key": key, "identifier": "customer-42", "identifier_hash": forged});
        let (s, e, _) = call(&srv, "/v1.0/widget/sessions", SITE, body).await;
        assert_eq!(s, 403, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("identifier_hash"), "{e}");
        let (s, e, _) =
            call(&srv, "/v1.0/widget/sessions", SITE, json!({"key": key, "identifier": "customer-42"})).await;
        assert_eq!((s, e["error"]["code"].as_str()), (422, Some("missing_identifier_hash")), "{e}");
        // An agent connects: the widget's offline notice goes away.
        let (s, t) = api.post("/v1.0/tokens", json!({"identity": "agent-ann", "role": "agent"})).await;
        assert_eq!(s, 201, "{t}");
        let mut agent = srv.ws(t["token"].as_str().unwrap()).await;
        agent.send(json!({"type": "ping"})).await;
        agent.next_of("pong").await;
        assert_eq!(session(&srv, &key, json!({})).await["agents_online"], true);
        // A forged visitor token is refused too.
        let body = json!({"key": key, "visitor_token": "x.y.z", "text": "hi"});
        let (s, _, _) = call(&srv, "/v1.0/widget/messages", SITE, body).await;
        assert_eq!(s, 401);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sessions_are_rate_limited_per_client_address() {
    on_every_backend(async |backend| {
        let mut config = test_config();
        config.limits.widget_rate_per_sec = 1;
        config.limits.widget_burst = 3;
        let srv = TestServer::start_on(backend, config).await;
        let key = website(&srv.api(KEY_A)).await["widget"]["public_key"].as_str().unwrap().to_string();
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let (s, _, _) = call(&srv, "/v1.0/widget/sessions", SITE, json!({"key": key})).await;
            statuses.push(s);
        }
        // A burst of 3 passes; the 4th in the same second is refused (the refill is 1 s away).
        assert_eq!(statuses, [201, 201, 201, 429]);
        srv.stop().await;
    })
    .await;
}
