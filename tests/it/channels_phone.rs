//! Phone numbers are one spelling (E.164) wherever they enter: REST participants, provider
//! inbound senders and the conversation lookup by address — so one person is one room.

use crate::common::channels::{config, conversations, create_account, fixture, messages, post_webhook, twilio_account};
use crate::common::stub::{Answer, Stub};
use crate::common::{Backend, KEY_A, TestServer, on_every_backend};
use serde_json::json;
use switchboard::channels::twilio::signature;

const TOKEN: &str = "twilio-auth-token-0123456789";
const NUMBER: &str = "+14155550123";

pub(crate) async fn twilio(srv: &TestServer) -> (Stub, String) {
    let stub = Stub::start(|_, i| {
        let json = fixture("twilio_send_response.json").replace("__SID__", &format!("SM{:032x}", i + 1));
        Answer::status(201, &json)
    })
    .await;
    let body = twilio_account("line", "+15005550006", TOKEN, &stub.url);
    let a = create_account(srv, body, &[TOKEN]).await;
    (stub, a["id"].as_str().unwrap().to_string())
}

/// An inbound SMS from `from`, signed like Twilio signs it.
pub(crate) async fn sms_from(srv: &TestServer, account: &str, from: &str) -> u16 {
    sms(srv, account, from, "SM3d1c29a4b7c04a8a9bd2a1f1e9d6b1a0").await
}

/// An inbound SMS from `from` with its own message sid.
async fn sms(srv: &TestServer, account: &str, from: &str, sid: &str) -> u16 {
    let form = fixture("twilio_inbound_sms.form")
        .replace("From=%2B14155550100", &format!("From={}", enc(from)))
        .replace("SM3d1c29a4b7c04a8a9bd2a1f1e9d6b1a0", sid);
    let url = srv.url(&format!("/v1.0/hooks/twilio/{account}"));
    let params: Vec<(String, String)> = form_urlencoded::parse(form.as_bytes()).into_owned().collect();
    let headers = [
        ("content-type", "application/x-www-form-urlencoded".to_string()),
        ("x-twilio-signature", signature(TOKEN, &url, &params)),
    ];
    post_webhook(srv, "twilio", account, &headers, &form).await.status().as_u16()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn every_spelling_of_a_number_is_one_participant_and_one_room() {
    on_every_backend(every_spelling_of_a_number_is_one_participant_and_one_room_on).await;
}

async fn every_spelling_of_a_number_is_one_participant_and_one_room_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let api = srv.api(KEY_A);
    let (stub, acc) = twilio(&srv).await;
    let c = api.conversation("order 42").await;
    let other = api.conversation("elsewhere").await;
    let path = |c: &str| format!("/v1.0/conversations/{c}/participants");

    let (s, p) = api
        .post(&path(&c), json!({"address": {"type": "tel", "target": "+1 (415) 555-0123"}, "account_id": acc}))
        .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["address"]["target"], NUMBER);
    // The other spellings are the same person, already bound to `c`.
    for spelling in ["+1-415-555-0123", "14155550123"] {
        let (s, e) =
            api.post(&path(&other), json!({"address": {"type": "tel", "target": spelling}, "account_id": acc})).await;
        assert_eq!(s, 409, "{spelling}: {e}");
    }
    // Not a phone number: refused, never a participant a reply would go to.
    let (s, e) =
        api.post(&path(&other), json!({"address": {"type": "tel", "target": "12345"}, "account_id": acc})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_address")), "{e}");

    // An SMS from the canonical spelling lands in the same room: no second room.
    assert_eq!(sms_from(&srv, &acc, NUMBER).await, 200);
    assert_eq!(conversations(&srv).await.len(), 2);
    assert_eq!(messages(&srv, &c).await.len(), 1);
    let (_, parts) = api.get(&path(&c)).await;
    assert_eq!(parts["result"].as_array().unwrap().len(), 1, "{parts}");

    // A reply goes out to the E.164 number.
    api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "on it"})).await;
    let sent = stub.wait_for(1).await;
    assert_eq!(sent[0].form_field("To").as_deref(), Some(NUMBER));

    // The lookup by address finds the room whatever the spelling.
    let q = format!("/v1.0/conversations?account_id={acc}&address={}", enc("+1 (415) 555 0123"));
    let (s, found) = api.get(&q).await;
    assert_eq!(s, 200, "{found}");
    let ids: Vec<&str> = found["result"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [c.as_str()]);
    let (s, e) = api.get(&format!("/v1.0/conversations?account_id={acc}&address=12345")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_address")), "{e}");
    srv.stop().await;
}

#[tokio::test]
async fn an_account_region_reads_national_numbers() {
    let srv = TestServer::start_on(Backend::Memory, config()).await;
    let api = srv.api(KEY_A);
    let (_stub, acc) = twilio(&srv).await;
    let (s, e) = api.put(&format!("/v1.0/conversation_accounts/{acc}"), json!({"default_region": "Narnia"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_region")), "{e}");
    let c = api.conversation("national").await;
    let path = format!("/v1.0/conversations/{c}/participants");
    let national = json!({"address": {"type": "tel", "target": "(415) 555-0123"}, "account_id": acc});
    let (s, e) = api.post(&path, national.clone()).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_address")), "no region: {e}");
    let (s, a) = api.put(&format!("/v1.0/conversation_accounts/{acc}"), json!({"default_region": "us"})).await;
    assert_eq!((s, a["default_region"].as_str()), (200, Some("US")), "{a}");
    let (s, p) = api.post(&path, national).await;
    assert_eq!((s, p["address"]["target"].as_str()), (201, Some(NUMBER)), "{p}");
    srv.stop().await;
}

/// A provider's sender that is no number we can normalise (a short code, a number outside any
/// numbering plan) is kept as written: the message is stored, its room opened and reused,
/// never refused — a refusal would only make the provider retry it forever.
#[tokio::test]
async fn a_sender_that_is_no_phone_number_is_kept_as_written() {
    on_every_backend(a_sender_that_is_no_phone_number_is_kept_as_written_on).await;
}

async fn a_sender_that_is_no_phone_number_is_kept_as_written_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let (_stub, acc) = twilio(&srv).await;
    for (i, from) in ["12345", "+15550001234", "12345"].into_iter().enumerate() {
        assert_eq!(sms(&srv, &acc, from, &format!("SM{i:032x}")).await, 200, "an SMS from {from}");
    }
    let rooms = conversations(&srv).await;
    assert_eq!(rooms.len(), 2, "one room per sender: {rooms:?}");
    for c in &rooms {
        let id = c["id"].as_str().unwrap();
        let parts = srv.api(KEY_A).get(&format!("/v1.0/conversations/{id}/participants")).await.1;
        let target = parts["result"][0]["address"]["target"].as_str().unwrap().to_string();
        let want = if target == "12345" { 2 } else { 1 };
        assert_eq!(messages(&srv, id).await.len(), want, "messages from {target}");
        assert!(["12345", "+15550001234"].contains(&target.as_str()), "kept as written: {target}");
    }
    srv.stop().await;
}
