//! Uploads going out on channels: an MMS through a Twilio stub that then fetches the media
//! through our signed URL, as Twilio does.

use super::{jpeg_with_exif, upload};
use crate::common::channels::{config, create_account, first_conversation, fixture, hook_url, post, twilio_account};
use crate::common::stub::{Answer, Stub, eventually};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "twilio-auth-token-0123456789";

/// What the stub fetched from a MediaUrl: status, content type, bytes.
type Fetched = (u16, String, Vec<u8>);

#[tokio::test]
async fn an_upload_goes_out_as_mms_and_twilio_fetches_it_through_the_signed_url() {
    on_every_backend(mms_on).await;
}

async fn mms_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let fetched: Arc<Mutex<Vec<Fetched>>> = Arc::default();
    let seen = fetched.clone();
    let stub = Stub::start(move |req, i| {
        if let Some(url) = req.form_field("MediaUrl") {
            let seen = seen.clone();
            tokio::spawn(async move {
                let res = reqwest::get(&url).await.unwrap();
                let status = res.status().as_u16();
                let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                let body = res.bytes().await.unwrap().to_vec();
                seen.lock().unwrap().push((status, ct, body));
            });
        }
        Answer::status(201, &json!({"sid": format!("SM{:032x}", i + 1), "status": "queued"}).to_string())
    })
    .await;
    let body = twilio_account("line", "+15005550006", TOKEN, &stub.url);
    let acc = create_account(&srv, body, &[TOKEN]).await["id"].as_str().unwrap().to_string();
    let sms = fixture("twilio_inbound_sms.form");
    let url = hook_url(&srv, "twilio", &acc);
    let params: Vec<(String, String)> = form_urlencoded::parse(sms.as_bytes()).into_owned().collect();
    let sig = switchboard::channels::twilio::signature(TOKEN, &url, &params);
    let r =
        post(&url, &[("content-type", "application/x-www-form-urlencoded".into()), ("x-twilio-signature", sig)], &sms)
            .await;
    assert_eq!(r.status(), 200);
    let c = first_conversation(&srv).await;

    let api = srv.api(KEY_A);
    let jpeg = jpeg_with_exif(64, 48);
    let (s, up) = upload(&api, &[], "photo.jpg", &jpeg).await;
    assert_eq!(s, 201, "{up}");
    let (s, m) = api
        .post(
            &format!("/v1.0/conversations/{c}/messages"),
            json!({"text": "here it is", "medias": [{"media_id": up["id"]}]}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    let sent = stub.wait_for(1).await;
    let media_url = sent[0].form_field("MediaUrl").expect("the send carries MediaUrl");
    assert!(media_url.starts_with(&format!("http://{}/v1.0/media/", srv.addr)), "{media_url}");
    let (status, ct, bytes) = eventually(|| async { fetched.lock().unwrap().first().cloned() }).await;
    assert_eq!((status, ct.as_str()), (200, "image/jpeg"));
    assert_eq!(bytes.len() as u64, up["size"].as_u64().unwrap());
    assert!(image::load_from_memory(&bytes).is_ok());
    srv.stop().await;
}
