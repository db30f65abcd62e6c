//! Upload and download on both backends: round trip with Range, serving headers, refusals,
//! scope and tenant checks, images, messages with `media_id`, deletion, signatures.

use super::{fetch, jpeg_with_exif, upload};
use crate::common::{Backend, KEY_A, KEY_B, TestServer, on_every_backend, test_config};
use serde_json::json;

#[tokio::test]
async fn upload_then_download_with_range_and_safe_headers() {
    on_every_backend(round_trip_on).await;
}

async fn round_trip_on(backend: Backend) {
    let srv = TestServer::start_on(backend, test_config()).await;
    let api = srv.api(KEY_A);
    let text = "hello media, this is a plain text file\n".repeat(50);
    let (s, up) = upload(&api, &[], "notes.txt", text.as_bytes()).await;
    assert_eq!(s, 201, "{up}");
    assert_eq!(up["content_type"], "text/plain; charset=utf-8");
    assert_eq!(up["size"], text.len());
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(up["sha256"], sha);
    let url = up["url"].as_str().unwrap();
    assert!(url.contains("exp=") && url.contains("sig="), "{url}");

    let res = fetch(url, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert_eq!(res.text().await.unwrap(), text);

    let res = fetch(url, Some("bytes=6-10")).await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.headers()["content-range"], format!("bytes 6-10/{}", text.len()));
    assert_eq!(res.text().await.unwrap(), "media");
    let res = fetch(url, Some("bytes=-5")).await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.text().await.unwrap(), &text[text.len() - 5..]);
    let res = fetch(url, Some(&format!("bytes={}-", text.len()))).await;
    assert_eq!(res.status(), 416);
    assert_eq!(res.headers()["content-range"], format!("bytes */{}", text.len()));
    srv.stop().await;
}

#[tokio::test]
async fn svg_is_served_as_an_attachment_and_html_and_executables_are_refused() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let (s, up) = upload(&api, &[], "x.svg", svg).await;
    assert_eq!(s, 201, "{up}");
    assert_eq!(up["content_type"], "image/svg+xml");
    let res = fetch(up["url"].as_str().unwrap(), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["content-disposition"], "attachment; filename=\"x.svg\"");

    let (s, v) = upload(&api, &[], "page.png", b"<!DOCTYPE html><html><script>alert(1)</script></html>").await;
    assert_eq!(s, 415, "{v}");
    assert_eq!(v["error"]["code"], "unsupported_media_type");
    let (s, v) = upload(&api, &[], "tool.pdf", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0").await;
    assert_eq!(s, 415, "{v}");
    // An image is shown inline, with nosniff too.
    let (s, up) = upload(&api, &[], "p.jpg", &jpeg_with_exif(40, 30)).await;
    assert_eq!(s, 201, "{up}");
    let res = fetch(up["url"].as_str().unwrap(), None).await;
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert!(res.headers().get("content-disposition").is_none());
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    srv.stop().await;
}

#[tokio::test]
async fn an_upload_over_its_kinds_limit_is_refused_with_413() {
    let mut c = test_config();
    c.media.max_file_bytes = 10_000;
    let srv = TestServer::start_with(c).await;
    let api = srv.api(KEY_A);
    let (s, v) = upload(&api, &[], "big.txt", "a".repeat(30_000).as_bytes()).await;
    assert_eq!(s, 413, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("10000 bytes"), "{v}");
    let (s, _) = upload(&api, &[], "small.txt", "a".repeat(9_000).as_bytes()).await;
    assert_eq!(s, 201);
    srv.stop().await;
}

#[tokio::test]
async fn a_client_token_uploads_only_for_a_conversation_of_its_scope() {
    on_every_backend(scope_on).await;
}

async fn scope_on(backend: Backend) {
    let srv = TestServer::start_on(backend, test_config()).await;
    let api = srv.api(KEY_A);
    let mine = api.conversation("mine").await;
    let other = api.conversation("other").await;
    api.webchat(&mine, "ann").await;
    let token = api.token("ann", &[&mine]).await;
    let ann = srv.as_token(&token);
    let (s, v) = upload(&ann, &[], "a.txt", b"hi there").await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "conversation_required");
    let (s, v) = upload(&ann, &[("conversation_id", &other)], "a.txt", b"hi there").await;
    assert_eq!(s, 403, "{v}");
    let (s, up) = upload(&ann, &[("conversation_id", &mine)], "a.txt", b"hi there").await;
    assert_eq!(s, 201, "{up}");
    // No credential at all: 401.
    let res = reqwest::Client::new().post(srv.url("/v1.0/media")).body("x").send().await.unwrap();
    assert_eq!(res.status(), 401);
    srv.stop().await;
}

#[tokio::test]
async fn messages_reference_uploads_and_another_tenants_media_is_not_found() {
    on_every_backend(messages_on).await;
}

async fn messages_on(backend: Backend) {
    let srv = TestServer::start_on(backend, test_config()).await;
    let (a, b) = (srv.api(KEY_A), srv.api(KEY_B));
    let conv = a.conversation("with a file").await;
    let (s, up) = upload(&a, &[], "report.pdf", b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n").await;
    assert_eq!(s, 201, "{up}");
    let id = up["id"].as_str().unwrap();
    let (s, m) = a
        .post(&format!("/v1.0/conversations/{conv}/messages"), json!({"text": "see", "medias": [{"media_id": id}]}))
        .await;
    assert_eq!(s, 201, "{m}");
    let media = &m["medias"][0];
    assert_eq!(media["media_id"], id);
    assert_eq!(media["content_type"], "application/pdf");
    assert_eq!(media["name"], "report.pdf");
    assert_eq!(media["size"], up["size"]);
    let res = fetch(media["url"].as_str().unwrap(), None).await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().starts_with(b"%PDF"));
    // Old-style URL medias still work.
    let (s, m) = a
        .post(
            &format!("/v1.0/conversations/{conv}/messages"),
            json!({"medias": [{"url": "https://example.com/a.png", "content_type": "image/png"}]}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    // Tenant b cannot send tenant a's media.
    let theirs = b.conversation("b's").await;
    let (s, v) = b
        .post(&format!("/v1.0/conversations/{theirs}/messages"), json!({"text": "x", "medias": [{"media_id": id}]}))
        .await;
    assert_eq!(s, 404, "{v}");
    // Over the WebSocket too.
    a.webchat(&conv, "ann").await;
    let token = a.token("ann", &[&conv]).await;
    let mut ws = srv.ws(&token).await;
    ws.subscribe(&conv, None).await;
    ws.send(json!({"type": "send", "conversation_id": conv, "text": "pic", "medias": [{"media_id": id}], "client_id": "c1"}))
        .await;
    let m = loop {
        let f = ws.next().await;
        if f["type"] == "message" {
            break f;
        }
    };
    assert_eq!(m["message"]["medias"][0]["media_id"], id, "{m}");
    srv.stop().await;
}

#[tokio::test]
async fn images_get_their_size_a_thumbnail_and_lose_their_exif() {
    on_every_backend(images_on).await;
}

async fn images_on(backend: Backend) {
    let srv = TestServer::start_on(backend, test_config()).await;
    let api = srv.api(KEY_A);
    let jpeg = jpeg_with_exif(800, 600);
    assert!(jpeg.windows(11).any(|w| w == b"GPSLatitude"));
    let (s, up) = upload(&api, &[], "holiday.jpg", &jpeg).await;
    assert_eq!(s, 201, "{up}");
    assert_eq!((up["width"].as_u64(), up["height"].as_u64()), (Some(800), Some(600)));
    let stored = fetch(up["url"].as_str().unwrap(), None).await.bytes().await.unwrap();
    assert!(!stored.windows(11).any(|w| w == b"GPSLatitude"), "the location is still in the stored image");
    assert!(!stored.windows(4).any(|w| w == b"Exif"));
    let img = image::load_from_memory(&stored).unwrap();
    assert_eq!((img.width(), img.height()), (800, 600));
    let thumb = fetch(up["thumbnail_url"].as_str().unwrap(), None).await;
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let t = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((t.width(), t.height()), (320, 240));
    srv.stop().await;
}

#[tokio::test]
async fn deleting_the_conversation_deletes_its_media() {
    on_every_backend(deletion_on).await;
}

async fn deletion_on(backend: Backend) {
    let srv = TestServer::start_on(backend, test_config()).await;
    let api = srv.api(KEY_A);
    let conv = api.conversation("to delete").await;
    let (_, up) = upload(&api, &[], "a.txt", b"short lived").await;
    let (s, _) =
        api.post(&format!("/v1.0/conversations/{conv}/messages"), json!({"medias": [{"media_id": up["id"]}]})).await;
    assert_eq!(s, 201);
    let url = up["url"].as_str().unwrap();
    assert_eq!(fetch(url, None).await.status(), 200);
    let (s, _) = api.delete(&format!("/v1.0/conversations/{conv}")).await;
    assert_eq!(s, 200);
    crate::common::stub::eventually(|| async { (fetch(url, None).await.status() == 404).then_some(()) }).await;
    srv.stop().await;
}

#[tokio::test]
async fn forged_and_expired_links_are_refused() {
    let srv = TestServer::start().await;
    let api = srv.api(KEY_A);
    let (_, up) = upload(&api, &[], "a.txt", b"secret words").await;
    let url = up["url"].as_str().unwrap();
    let forged = format!("{}0", &url[..url.len() - 1]);
    let forged = if forged == url { format!("{}1", &url[..url.len() - 1]) } else { forged };
    assert_eq!(fetch(&forged, None).await.status(), 403);
    let id: uuid::Uuid = up["id"].as_str().unwrap().parse().unwrap();
    let past = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 10;
    let expired = srv.state.media.signer.url_until(
        &format!("http://{}", srv.addr),
        id,
        switchboard::media::sign::Variant::Original,
        past,
    );
    let res = fetch(&expired, None).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("expired"));
    // Without any signature: 400 (missing query), never the bytes.
    let bare = url.split('?').next().unwrap();
    assert_ne!(fetch(bare, None).await.status(), 200);
    srv.stop().await;
}
