//! Inbound MMS media re-hosted from Twilio's media URL (fetched with the account's basic auth),
//! then deleted when the person is erased. Both backends. (WhatsApp, Telegram and LINE
//! re-hosting are in their channel suites.)

use super::fetch;
use crate::common::channels::{SVG, config, create_account, first_conversation, fixture, hook_url, post, rehosted};
use crate::common::stub::{Answer, Stub, eventually};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;

const TOKEN: &str = "twilio-auth-token-0123456789";
const SID: &str = "AC00000000000000000000000000000000";

#[tokio::test]
async fn twilio_mms_media_is_rehosted_with_basic_auth_and_erased_with_the_person() {
    on_every_backend(mms_rehost_on).await;
}

async fn mms_rehost_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let media = Stub::start(|req, _| {
        use base64::Engine;
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}")));
        if req.header("authorization") != basic {
            return Answer::status(401, "no");
        }
        Answer { status: 200, headers: vec![("content-type", "image/jpeg".into())], body: SVG.into() }
    })
    .await;
    let body = json!({"type": "tel", "provider": "twilio", "name": "line", "address": "+15005550006",
                      "credentials": {"account_sid": SID, "auth_token": TOKEN}, "api_base_url": "http://127.0.0.1:9"});
    let acc = create_account(&srv, body, &[TOKEN]).await["id"].as_str().unwrap().to_string();
    let media_url = format!("{}/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1", media.url);
    let mms: String = form_urlencoded::parse(fixture("twilio_inbound_mms.form").as_bytes())
        .into_owned()
        .map(|(k, v)| if k == "MediaUrl0" { (k, media_url.clone()) } else { (k, v) })
        .fold(form_urlencoded::Serializer::new(String::new()), |mut s, (k, v)| {
            s.append_pair(&k, &v);
            s
        })
        .finish();
    let url = hook_url(&srv, "twilio", &acc);
    let params: Vec<(String, String)> = form_urlencoded::parse(mms.as_bytes()).into_owned().collect();
    let sig = switchboard::channels::twilio::signature(TOKEN, &url, &params);
    let r =
        post(&url, &[("content-type", "application/x-www-form-urlencoded".into()), ("x-twilio-signature", sig)], &mms)
            .await;
    assert_eq!(r.status(), 200);
    let c = first_conversation(&srv).await;
    let m = rehosted(&srv, &c, 0).await;
    let ours = m["medias"][0]["url"].as_str().unwrap().to_string();
    assert!(ours.starts_with(&srv.url("/v1.0/media/")) && !ours.contains(&media.url), "{ours}");
    assert_eq!(m["medias"][0]["content_type"], "image/svg+xml");
    let res = fetch(&ours, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), SVG);

    // Erasing the person deletes the stored copy of what they sent.
    let api = srv.api(KEY_A);
    let (_, parts) = api.get(&format!("/v1.0/conversations/{c}/participants")).await;
    let cid = parts["result"][0]["contact_id"].as_str().unwrap().to_string();
    assert_eq!(api.delete(&format!("/v1.0/contacts/{cid}?erase=true")).await.0, 204);
    eventually(|| async { (fetch(&ours, None).await.status() == 404).then_some(()) }).await;
    srv.stop().await;
}
