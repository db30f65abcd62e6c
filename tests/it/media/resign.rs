//! Signed media URLs in history never go stale: with a short `media.url_ttl_secs`, the URL a
//! message was posted with expires, and reading the history again (REST list and get, and a
//! WebSocket `subscribe` with `since` that replays it) hands out a fresh one that opens.
//! Both backends.

use super::{fetch, upload};
use crate::common::stub::eventually;
use crate::common::{Backend, KEY_A, TestServer, on_every_backend, test_config};
use serde_json::{Value, json};

#[tokio::test]
async fn history_reads_re_sign_expired_media_urls() {
    on_every_backend(resign_on).await;
}

async fn opens(url: &str) -> bool {
    fetch(url, None).await.status() == 200
}

async fn resign_on(backend: Backend) {
    let mut c = test_config();
    c.media.url_ttl_secs = 3;
    let srv = TestServer::start_on(backend, c).await;
    let api = srv.api(KEY_A);
    let conv = api.conversation("files").await;
    api.webchat(&conv, "alice").await;
    let (s, up) = upload(&api, &[], "notes.txt", b"a note kept for a long time\n").await;
    assert_eq!(s, 201, "{up}");
    let (s, m) = api
        .post(
            &format!("/v1.0/conversations/{conv}/messages"),
            json!({"text": "see file", "medias": [{"media_id": up["id"]}]}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    let posted = m["medias"][0]["url"].as_str().unwrap().to_string();
    let mid = m["id"].as_str().unwrap().to_string();
    // The URL the message was posted with expires...
    eventually(|| async {
        let res = fetch(&posted, None).await;
        (res.status() == 403).then_some(())
    })
    .await;
    // ...and every read of history hands out one that opens (read again if the machine is so
    // slow that the fresh one expired before it was fetched).
    let url_of = |v: &Value| v["medias"][0]["url"].as_str().unwrap().to_string();
    eventually(|| async {
        let (_, page) = api.get(&format!("/v1.0/conversations/{conv}/messages")).await;
        let url = url_of(&page["result"][0]);
        (url != posted && opens(&url).await).then_some(())
    })
    .await;
    eventually(|| async {
        let (_, one) = api.get(&format!("/v1.0/conversations/{conv}/messages/{mid}")).await;
        let url = url_of(&one);
        (url != posted && opens(&url).await).then_some(())
    })
    .await;
    eventually(|| async {
        let mut ws = srv.ws(&api.token("alice", &[&conv]).await).await;
        let sub = ws.subscribe(&conv, Some(0)).await;
        assert_eq!(sub["recovered"], true, "{sub}");
        let f = ws.next_of("message").await;
        let url = url_of(&f["message"]);
        (url != posted && opens(&url).await).then_some(())
    })
    .await;
    srv.stop().await;
}
