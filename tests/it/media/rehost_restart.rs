//! The re-hosting of inbound provider media is a durable job on Redis: the provider's media
//! server fails, the node is killed while the retry waits, and the restarted node finishes
//! the job — the message ends with our URL, announced by a `message_updated`.

use crate::common::KEY_A;
use crate::common::channels::{SVG, fixture, next_update};
use crate::common::redis::{Node, RedisServer};
use crate::common::stub::{Answer, Stub, eventually};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const TOKEN: &str = "twilio-auth-token-0123456789";
const SID: &str = "AC00000000000000000000000000000000";

#[tokio::test]
async fn rehosting_survives_a_killed_node_on_redis() {
    let redis = RedisServer::start().await;
    let up = Arc::new(AtomicBool::new(false));
    let serving = up.clone();
    let media = Stub::start(move |_, _| {
        if serving.load(Ordering::SeqCst) {
            Answer { status: 200, headers: vec![("content-type", "image/svg+xml".into())], body: SVG.into() }
        } else {
            Answer::status(503, "media server down")
        }
    })
    .await;
    let mut node = Node::start_with(&redis.url(), false, |c| {
        c.channels.retry_base_ms = 200;
        c.channels.retry_max_ms = 400;
        c.channels.request_timeout_ms = 500;
        c.media.rehost_attempts = 1000;
    })
    .await;
    let api = node.api(KEY_A);
    let (s, a) = api
        .post(
            "/v1.0/conversation_accounts",
            json!({"type": "tel", "provider": "twilio", "name": "line", "address": "+15005550006",
                   "credentials": {"account_sid": SID, "auth_token": TOKEN}, "api_base_url": "http://127.0.0.1:9"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let acc = a["id"].as_str().unwrap().to_string();
    let media_url = format!("{}/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1", media.url);
    let params: Vec<(String, String)> = form_urlencoded::parse(fixture("twilio_inbound_mms.form").as_bytes())
        .into_owned()
        .map(|(k, v)| if k == "MediaUrl0" { (k, media_url.clone()) } else { (k, v) })
        .collect();
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &params {
        ser.append_pair(k, v);
    }
    let mms = ser.finish();
    let url = node.url(&format!("/v1.0/hooks/twilio/{acc}"));
    let sig = switchboard::channels::twilio::signature(TOKEN, &url, &params);
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(mms)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The media server refused at least once: the job now waits for its retry.
    media.wait_for(1).await;
    node.kill();
    node.restart().await;
    let api = node.api(KEY_A);
    let (_, list) = api.get("/v1.0/conversations").await;
    let c = list["result"][0]["id"].as_str().unwrap().to_string();
    let (_, m) = api.get(&format!("/v1.0/conversations/{c}/messages")).await;
    assert!(m["result"][0]["medias"][0]["media_id"].is_null(), "not re-hosted yet: {m}");
    api.webchat(&c, "watcher").await;
    let mut ws = node.ws(&api.token("watcher", &[&c]).await).await;
    ws.subscribe(&c, None).await;
    up.store(true, Ordering::SeqCst);
    let f = next_update(&mut ws).await;
    let ours = f["message"]["medias"][0]["url"].as_str().unwrap().to_string();
    assert!(f["message"]["medias"][0]["media_id"].is_string(), "{f}");
    assert!(ours.starts_with(&node.url("/v1.0/media/")) && !ours.contains(&media.url), "{ours}");
    let stored = eventually(|| async {
        let (_, m) = api.get(&format!("/v1.0/conversations/{c}/messages")).await;
        m["result"][0]["medias"][0]["media_id"].is_string().then(|| m["result"][0].clone())
    })
    .await;
    let res = reqwest::get(stored["medias"][0]["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), SVG);
}
