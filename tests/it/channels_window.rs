//! The 24-hour customer-service window: a reply 25 hours after the person's last message is
//! refused with `window_closed` before it reaches the provider; a WhatsApp template, or a
//! Messenger tag the page is allowed, goes through; a person with SMS and WhatsApp is answered
//! over SMS; a room with an open and a closed recipient sends to the open one. "25 hours
//! later" is the providers' own webhook timestamps, 25 hours in the past: no clock, no sleep.
//! The template listing takes agent and admin tokens (the inbox's picker), not end users'.
//! The stub Graph API and the WhatsApp helpers are shared with `inbox_templates`.

use crate::channels_messenger as fb;
use crate::common::channels::{
    config, create_account, first_conversation, fixture, fixture_at, json_webhook, messages, twilio_stub,
};
use crate::common::stub::{Answer, Stub, eventually};
use crate::common::{Backend, KEY_A, KEY_B, TestServer, on_every_backend};
use crate::contacts::{WA_SECRET, id, participants, sms, twilio};
use serde_json::json;

pub const DAY_AND_AN_HOUR: i64 = 25 * 3600;

/// A stub Graph API for WhatsApp: sends and the approved templates.
pub async fn graph() -> Stub {
    Stub::start(|req, i| {
        if req.path.contains("/message_templates") {
            return Answer::status(200, &fixture("whatsapp_message_templates.json"));
        }
        Answer::status(200, &fixture("whatsapp_send_response.json").replace("__WAMID__", &format!("wamid.W{i:04}")))
    })
    .await
}

pub async fn whatsapp(srv: &TestServer, stub: &Stub, mode: &str) -> String {
    let body = json!({"type": "whatsapp", "provider": "whatsapp", "name": "WA", "address": "+15550783881", "match": mode,
                      "credentials": {"access_token": "EAAJB000ZDZD", "app_secret": WA_SECRET, "verify_token": "v",
                                      "phone_number_id": "106540352242922", "business_account_id": "102290129340398"},
                      "api_base_url": stub.url});
    id(&create_account(srv, body, &[WA_SECRET]).await)
}

pub async fn wa_inbound(srv: &TestServer, account: &str, body: &str) {
    let sig = switchboard::channels::whatsapp::signature(WA_SECRET, body.as_bytes());
    assert_eq!(json_webhook(srv, "whatsapp", account, body, &[("x-hub-signature-256", sig)]).await.status(), 200);
}

pub fn sends(stub: &Stub) -> Vec<serde_json::Value> {
    stub.requests().iter().filter(|r| r.path.ends_with("/messages")).map(|r| r.json()).collect()
}

#[tokio::test]
async fn whatsapp_after_25_hours_takes_only_a_template() {
    on_every_backend(whatsapp_window_on).await;
}

async fn whatsapp_window_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = graph().await;
    let acc = whatsapp(&srv, &stub, "account").await;
    wa_inbound(&srv, &acc, &fixture_at("whatsapp_inbound_text.json", DAY_AND_AN_HOUR)).await;
    let c = first_conversation(&srv).await;
    let api = srv.api(KEY_A);
    let p = participants(&api, &c).await.remove(0);
    let expires = chrono::DateTime::parse_from_rfc3339(p["window_expires_at"].as_str().unwrap()).unwrap();
    assert!(expires < chrono::Utc::now(), "{p}");

    let (s, e) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "Still there?"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("window_closed")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("template"), "{e}");
    assert_eq!(messages(&srv, &c).await.len(), 1, "nothing stored");

    // The picker's list, then a template: accepted, rendered into the room, sent as a template.
    let (s, list) = api.get(&format!("/v1.0/conversation_accounts/{acc}/templates")).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["result"][0]["name"], "order_update");
    assert_eq!(list["result"][0]["parameters"], 2);
    let template = json!({"name": "order_update", "language": "en_US", "parameters": ["Sheena", "#1042"]});
    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"template": template})).await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["text"], "Hi Sheena, your order #1042 is ready. Reply to this message to continue the conversation.");
    let out = eventually(|| async { sends(&stub).first().cloned() }).await;
    assert_eq!(
        out,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234", "type": "template",
               "template": {"name": "order_update", "language": {"code": "en_US"},
                            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Sheena"}, {"type": "text", "text": "#1042"}]}]}})
    );
    let unknown = json!({"template": {"name": "nope", "language": "en_US"}});
    let (s, e) = api.post(&format!("/v1.0/conversations/{c}/messages"), unknown).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("unknown_template")));

    // The person answers: the window opens again and free text goes.
    let again = fixture("whatsapp_inbound_text.json").replace("QzQTRB", "QzQTRX");
    wa_inbound(&srv, &acc, &again).await;
    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "Here I am"})).await;
    assert_eq!(s, 201, "{m}");
    eventually(|| async { (sends(&stub).len() == 2).then_some(()) }).await;
    srv.stop().await;
}

#[tokio::test]
async fn staff_tokens_list_templates_end_user_tokens_do_not() {
    on_every_backend(template_callers_on).await;
}

/// The inbox's picker asks with the signed-in agent's token: agents and admins of the tenant
/// get the list; an end user's token is refused; another tenant's key does not see the account.
async fn template_callers_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = graph().await;
    let acc = whatsapp(&srv, &stub, "account").await;
    let path = format!("/v1.0/conversation_accounts/{acc}/templates");
    for role in ["agent", "admin"] {
        let session = crate::agent_accounts::signed_up(&srv, KEY_A, &format!("{role}@example.com"), role).await;
        let (s, list) = srv.api(session["token"].as_str().unwrap()).get(&path).await;
        assert_eq!(s, 200, "{role}: {list}");
        let names: Vec<_> = list["result"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
        assert_eq!(names, vec![json!("order_update"), json!("follow_up")], "{role}");
    }
    let op = srv.api(KEY_A);
    let chat = op.conversation("Web visitor").await;
    op.webchat(&chat, "visitor").await;
    let user = op.token("visitor", &[&chat]).await;
    let (s, e) = srv.api(&user).get(&path).await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")), "{e}");
    assert_eq!(srv.api("not-a-token").get(&path).await.0, 401);
    let (s, e) = srv.api(KEY_B).get(&path).await;
    assert_eq!(s, 404, "{e}");
    srv.stop().await;
}

#[tokio::test]
async fn messenger_after_25_hours_takes_an_allowed_tag() {
    on_every_backend(messenger_window_on).await;
}

async fn messenger_window_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let stub = fb::graph_stub().await;
    let acc = fb::account(&srv, &stub).await;
    fb::webhook(&srv, &acc, &fixture_at("messenger_inbound_text.json", DAY_AND_AN_HOUR)).await;
    let c = first_conversation(&srv).await;
    let api = srv.api(KEY_A);
    let path = format!("/v1.0/conversations/{c}/messages");
    let (s, e) = api.post(&path, json!({"text": "Following up"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("window_closed")), "{e}");
    let (s, e) = api.post(&path, json!({"text": "Following up", "tag": "HUMAN_AGENT"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("window_closed")), "the page may not use the tag yet: {e}");
    let (s, e) = api.post(&path, json!({"text": "x", "tag": "not a tag"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("invalid_tag")));

    let (s, a) = api.put(&format!("/v1.0/conversation_accounts/{acc}"), json!({"message_tags": ["HUMAN_AGENT"]})).await;
    assert_eq!((s, &a["message_tags"]), (200, &json!(["HUMAN_AGENT"])), "{a}");
    let (s, m) = api.post(&path, json!({"text": "Following up", "tag": "HUMAN_AGENT"})).await;
    assert_eq!(s, 201, "{m}");
    let out = eventually(|| async { stub.requests().into_iter().find(|r| r.path.ends_with("/messages")) }).await;
    assert_eq!(
        out.json(),
        json!({"recipient": {"id": fb::PSID}, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT", "message": {"text": "Following up"}})
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_person_with_sms_and_a_closed_whatsapp_window_is_answered_over_sms() {
    on_every_backend(sms_fallback_on).await;
}

async fn sms_fallback_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let api = srv.api(KEY_A);
    let twilio_api = twilio_stub().await;
    let stub = graph().await;
    let sms_acc = twilio(&srv, &twilio_api.url, "+15005550006", "contact").await;
    let wa_acc = whatsapp(&srv, &stub, "contact").await;
    // They texted, then (as the room sees it) wrote on WhatsApp, 25 hours ago by WhatsApp's clock.
    sms(&srv, &sms_acc, "+16505551234", "SM10", "texting you").await;
    wa_inbound(&srv, &wa_acc, &fixture_at("whatsapp_inbound_text.json", DAY_AND_AN_HOUR)).await;
    let c = first_conversation(&srv).await;
    let people = participants(&api, &c).await;
    assert_eq!(people.len(), 1, "{people:?}");

    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "Blue and red"})).await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(
        (m["deliveries"][0]["account_id"].as_str(), m["deliveries"][0]["status"].as_str()),
        (Some(sms_acc.as_str()), Some("queued"))
    );
    let out = twilio_api.wait_for(1).await;
    assert_eq!(out[0].form_field("To").as_deref(), Some("+16505551234"));
    assert_eq!(out[0].form_field("Body").as_deref(), Some("Blue and red"));
    assert!(sends(&stub).is_empty(), "nothing went to WhatsApp");
    srv.stop().await;
}

#[tokio::test]
async fn a_room_with_an_open_and_a_closed_recipient_sends_to_the_open_one() {
    on_every_backend(mixed_room_on).await;
}

async fn mixed_room_on(backend: Backend) {
    let srv = TestServer::start_on(backend, config()).await;
    let api = srv.api(KEY_A);
    let twilio_api = Stub::start(|_, i| {
        Answer::status(201, &fixture("twilio_send_response.json").replace("__SID__", &format!("SM{:032x}", i + 1)))
    })
    .await;
    let stub = graph().await;
    let sms_acc = twilio(&srv, &twilio_api.url, "+15005550006", "account").await;
    let wa_acc = whatsapp(&srv, &stub, "account").await;
    wa_inbound(&srv, &wa_acc, &fixture_at("whatsapp_inbound_text.json", DAY_AND_AN_HOUR)).await;
    let c = first_conversation(&srv).await;
    let body = json!({"address": {"type": "tel", "target": "+14155550100"}, "account_id": sms_acc});
    let (s, p) = api.post(&format!("/v1.0/conversations/{c}/participants"), body).await;
    assert_eq!(s, 201, "{p}");

    let (s, m) = api.post(&format!("/v1.0/conversations/{c}/messages"), json!({"text": "To you both"})).await;
    assert_eq!(s, 201, "{m}");
    let deliveries = m["deliveries"].as_array().unwrap();
    let on = |kind: &str| deliveries.iter().find(|d| d["channel"] == kind).unwrap().clone();
    assert_eq!(
        (on("whatsapp")["status"].as_str(), on("whatsapp")["error"].as_str()),
        (Some("failed"), Some("window_closed"))
    );
    assert_eq!(on("tel")["status"], "queued");
    twilio_api.wait_for(1).await;
    assert!(sends(&stub).is_empty());
    srv.stop().await;
}
