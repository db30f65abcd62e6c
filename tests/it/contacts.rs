//! Contacts (issue 16): people as one contact across channels and numbers — CRUD with one
//! owner per address, lookup by `q=` and by address, the contact an inbound message creates,
//! merge (idempotent, and safe when two merges race), contact matching across an SMS and a
//! WhatsApp account with replies following the person, export and erasure. Both backends.

use crate::common::channels::{
    config, conversations, create_account, fixture, hook_url, json_webhook, messages, post, twilio_stub,
};
use crate::common::stub::{Answer, Stub, eventually};
use crate::common::{Api, KEY_A, KEY_B, TestServer, on_every_backend};
use serde_json::{Value, json};

pub const TWILIO_TOKEN: &str = "twilio-auth-token-0123456789";
pub const WA_SECRET: &str = "wa-app-secret-0123456789abcdef";

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

fn ids(page: &Value) -> Vec<String> {
    page["result"].as_array().unwrap_or_else(|| panic!("no result in {page}")).iter().map(id).collect()
}

async fn contact(api: &Api, body: Value) -> Value {
    let (s, c) = api.post("/v1.0/contacts", body).await;
    assert_eq!(s, 201, "{c}");
    c
}

pub async fn twilio(srv: &TestServer, api_base: &str, address: &str, mode: &str) -> String {
    let body = json!({"type": "tel", "provider": "twilio", "name": "sms", "address": address, "match": mode,
                      "credentials": {"account_sid": "AC00000000000000000000000000000000", "auth_token": TWILIO_TOKEN},
                      "api_base_url": api_base});
    id(&create_account(srv, body, &[TWILIO_TOKEN]).await)
}

/// An inbound SMS from `from` to `account`, message sid `sid`, signed as Twilio signs it.
pub async fn sms(srv: &TestServer, account: &str, from: &str, sid: &str, text: &str) {
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(fixture("twilio_inbound_sms.form").as_bytes()).into_owned().collect();
    for (k, v) in params.iter_mut() {
        match k.as_str() {
            "From" => *v = from.into(),
            "Body" => *v = text.into(),
            "MessageSid" | "SmsSid" | "SmsMessageSid" => *v = sid.into(),
            _ => {}
        }
    }
    let form: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let url = hook_url(srv, "twilio", account);
    let sig = switchboard::channels::twilio::signature(TWILIO_TOKEN, &url, &params);
    let headers = [("content-type", "application/x-www-form-urlencoded".to_string()), ("x-twilio-signature", sig)];
    assert_eq!(post(&url, &headers, &form).await.status(), 200);
}

/// The participants of `conv`.
pub async fn participants(api: &Api, conv: &str) -> Vec<Value> {
    let (s, p) = api.get(&format!("/v1.0/conversations/{conv}/participants")).await;
    assert_eq!(s, 200, "{p}");
    p["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn contacts_round_trip_with_one_owner_per_address_and_are_found_by_prefix_and_address() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config()).await;
        let api = srv.api(KEY_A);
        let ada = contact(
            &api,
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "metadata": {"tier": "gold"},
                   "addresses": [{"type": "tel", "target": "+1 (415) 555-0123"}, {"type": "line", "target": "U1"}]}),
        )
        .await;
        assert_eq!(ada["addresses"][0], json!({"type": "tel", "target": "+14155550123"}), "{backend:?}: E.164");
        let (s, e) = api
            .post(
                "/v1.0/contacts",
                json!({"name": "Impostor", "addresses": [{"type": "tel", "target": "+14155550123"}]}),
            )
            .await;
        assert_eq!((s, e["error"]["code"].as_str()), (409, Some("conflict")), "{backend:?}: {e}");
        let (s, e) = api.post("/v1.0/contacts", json!({"addresses": [{"type": "tel", "target": "12345"}]})).await;
        assert_eq!(s, 422, "{e}");
        let bob =
            contact(&api, json!({"name": "Bob Stone", "addresses": [{"type": "email", "target": "Bob@Example.COM"}]}))
                .await;
        assert_eq!(bob["addresses"][0]["target"], "bob@example.com");

        let find = async |q: &str| ids(&api.get(&format!("/v1.0/contacts?q={q}")).await.1);
        assert_eq!(find("lov").await, [id(&ada)], "a word of the name");
        assert_eq!(find("ADA%40").await, [id(&ada)], "the email, any case");
        assert_eq!(find("%2B1415").await, [id(&ada)], "a number");
        assert_eq!(find("1415555").await, [id(&ada)], "a number without +");
        assert_eq!(find("bob").await, [id(&bob)]);
        assert!(find("zed").await.is_empty());
        let (_, by) = api.get("/v1.0/contacts?address=tel:%2B1%20415%20555%200123").await;
        assert_eq!(ids(&by), [id(&ada)], "{backend:?}: lookup by address in any spelling");

        // Paging, newest first.
        let (_, p1) = api.get("/v1.0/contacts?page_size=1").await;
        assert_eq!(ids(&p1), [id(&bob)]);
        let token = p1["next_page_token"].as_str().unwrap();
        let (_, p2) = api.get(&format!("/v1.0/contacts?page_size=1&page_token={token}")).await;
        assert_eq!(ids(&p2), [id(&ada)]);

        // An update moves addresses: the old one is free again, the new one taken.
        let (s, u) = api
            .put(
                &format!("/v1.0/contacts/{}", id(&ada)),
                json!({"name": "Ada King", "addresses": [{"type": "tel", "target": "+14155550199"}]}),
            )
            .await;
        assert_eq!((s, u["name"].as_str()), (200, Some("Ada King")), "{u}");
        assert!(find("lov").await.is_empty(), "{backend:?}: old terms leave the index");
        assert_eq!(find("king").await, [id(&ada)]);
        contact(&api, json!({"name": "New owner", "addresses": [{"type": "tel", "target": "+14155550123"}]})).await;

        // Tenants are isolated.
        let other = srv.api(KEY_B);
        assert_eq!(other.get(&format!("/v1.0/contacts/{}", id(&ada))).await.0, 404);
        assert!(ids(&other.get("/v1.0/contacts?q=ada").await.1).is_empty());

        assert_eq!(api.delete(&format!("/v1.0/contacts/{}", id(&bob))).await.0, 204);
        assert_eq!(api.get(&format!("/v1.0/contacts/{}", id(&bob))).await.0, 404);
        assert!(find("bob").await.is_empty());
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_inbound_sms_creates_its_contact_and_merges_are_idempotent_and_race_safe() {
    on_every_backend(async |backend| {
        let mut cfg = config();
        cfg.webhooks.allow_private_targets = true;
        let srv = TestServer::start_on(backend, cfg).await;
        let api = srv.api(KEY_A);
        let hook = Stub::start(|_, _| Answer::status(200, "ok")).await;
        let (s, w) =
            api.post("/v1.0/webhooks", json!({"url": hook.url, "events": ["contact.merged", "contact.created"]})).await;
        assert_eq!(s, 201, "{w}");
        let acc = twilio(&srv, "http://127.0.0.1:9", "+15005550006", "account").await;
        sms(&srv, &acc, "+14155550100", "SM01", "first").await;
        sms(&srv, &acc, "+14155550100", "SM02", "second").await;
        sms(&srv, &acc, "+14155550111", "SM03", "other phone").await;
        let convs = conversations(&srv).await;
        assert_eq!(convs.len(), 2, "{backend:?}");
        let (room_b, room_a) = (id(&convs[0]), id(&convs[1]));
        let a = participants(&api, &room_a).await[0]["contact_id"].as_str().unwrap().to_string();
        let b = participants(&api, &room_b).await[0]["contact_id"].as_str().unwrap().to_string();
        assert_ne!(a, b);
        let (_, ca) = api.get(&format!("/v1.0/contacts/{a}")).await;
        assert_eq!(
            (ca["name"].as_str(), &ca["addresses"]),
            (Some("+14155550100"), &json!([{"type": "tel", "target": "+14155550100"}]))
        );
        let (_, list) = api.get(&format!("/v1.0/contacts/{a}/conversations")).await;
        assert_eq!(ids(&list), [room_a.as_str()], "{backend:?}: one room for both messages");

        let (s, m) = api.post(&format!("/v1.0/contacts/{a}/merge"), json!({"contact_id": b})).await;
        assert_eq!(s, 200, "{m}");
        assert_eq!(m["contact"]["addresses"].as_array().unwrap().len(), 2, "{m}");
        assert_eq!(participants(&api, &room_b).await[0]["contact_id"], a.as_str(), "{backend:?}: participants move");
        let (_, list) = api.get(&format!("/v1.0/contacts/{a}/conversations")).await;
        assert_eq!(ids(&list), [room_b.clone(), room_a.clone()], "newest first");
        // The same list as a conversation filter, combinable with the others.
        let (_, f) = api.get(&format!("/v1.0/conversations?contact_id={a}")).await;
        assert_eq!(ids(&f), [room_b.clone(), room_a.clone()], "{backend:?}: {f}");
        assert_eq!(api.put(&format!("/v1.0/conversations/{room_a}"), json!({"status": "resolved"})).await.0, 200);
        let (_, f) = api.get(&format!("/v1.0/conversations?contact_id={a}&status=resolved")).await;
        assert_eq!(ids(&f), [room_a.as_str()], "{backend:?}: {f}");
        let (_, f) = api.get(&format!("/v1.0/conversations?contact_id={a}&page_size=1")).await;
        assert_eq!(ids(&f), [room_b.as_str()]);
        let token = f["next_page_token"].as_str().unwrap();
        let (_, f) = api.get(&format!("/v1.0/conversations?contact_id={a}&page_size=1&page_token={token}")).await;
        assert_eq!(ids(&f), [room_a.as_str()]);
        // Renamed, the person is found by the new name in conversation lists too.
        let (s, _) = api.put(&format!("/v1.0/contacts/{a}"), json!({"name": "Grace Hopper"})).await;
        assert_eq!(s, 200);
        let (_, f) = api.get("/v1.0/conversations?q=grace").await;
        assert_eq!(ids(&f), [room_b.clone(), room_a.clone()], "{backend:?}: {f}");
        assert_eq!(participants(&api, &room_a).await[0]["address"]["name"], "Grace Hopper");
        assert_eq!(api.get(&format!("/v1.0/contacts/{b}")).await.0, 404);
        let (_, by) = api.get("/v1.0/contacts?address=tel:%2B14155550111").await;
        assert_eq!(ids(&by), [a.as_str()]);
        let (s, again) = api.post(&format!("/v1.0/contacts/{a}/merge"), json!({"contact_id": b})).await;
        assert_eq!((s, id(&again["contact"])), (200, a.clone()), "{backend:?}: idempotent");
        let merged = eventually(|| async {
            let n = hook.requests().iter().filter(|r| r.json()["type"] == "contact.merged").count();
            (n > 0).then_some(n)
        })
        .await;
        assert_eq!(merged, 1, "one contact.merged for one merge");
        let created = hook.requests().iter().filter(|r| r.json()["type"] == "contact.created").count();
        assert_eq!(created, 2, "{backend:?}: one contact per new number");

        // Two merges of one pair, in opposite directions, at once: one survivor.
        let x = id(&contact(&api, json!({"name": "X", "addresses": [{"type": "line", "target": "Ux"}]})).await);
        let y = id(&contact(&api, json!({"name": "Y", "addresses": [{"type": "line", "target": "Uy"}]})).await);
        let (px, py) = (format!("/v1.0/contacts/{x}/merge"), format!("/v1.0/contacts/{y}/merge"));
        let (r1, r2) = tokio::join!(api.post(&px, json!({"contact_id": y})), api.post(&py, json!({"contact_id": x})));
        assert_eq!((r1.0, r2.0), (200, 200), "{r1:?} {r2:?}");
        assert_eq!(id(&r1.1["contact"]), id(&r2.1["contact"]), "{backend:?}: both name the same survivor");
        let survivor = id(&r1.1["contact"]);
        let codes = (api.get(&format!("/v1.0/contacts/{x}")).await.0, api.get(&format!("/v1.0/contacts/{y}")).await.0);
        assert!(codes == (200, 404) || codes == (404, 200), "{codes:?}");
        let (_, s) = api.get(&format!("/v1.0/contacts/{survivor}")).await;
        assert_eq!(s["addresses"].as_array().unwrap().len(), 2, "{s}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn in_contact_mode_an_sms_and_a_whatsapp_message_land_in_one_room_and_replies_follow_the_person() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config()).await;
        let api = srv.api(KEY_A);
        let twilio_api = twilio_stub().await;
        let graph = Stub::start(|_, i| {
            Answer::status(200, &fixture("whatsapp_send_response.json").replace("__WAMID__", &format!("wamid.X{i:04}")))
        })
        .await;
        let sms_acc = twilio(&srv, &twilio_api.url, "+15005550006", "contact").await;
        let wa = json!({"type": "whatsapp", "provider": "whatsapp", "name": "WA", "address": "+15550783881", "match": "contact",
                        "credentials": {"access_token": "EAAJB0000000000000000000000000000000000000000ZDZD", "app_secret": WA_SECRET,
                                        "verify_token": "v", "phone_number_id": "106540352242922"},
                        "api_base_url": graph.url});
        let wa_acc = id(&create_account(&srv, wa, &[WA_SECRET]).await);
        assert_eq!(create_account(&srv, json!({"type": "tel", "provider": "twilio", "address": "+15005550007",
            "credentials": {"account_sid": "AC0", "auth_token": "t"}, "match": "contact"}), &[]).await["match"], "contact");

        // The fixture's WhatsApp sender is +16505551234: the same person texts number A first.
        sms(&srv, &sms_acc, "+16505551234", "SM10", "texting you first").await;
        let body = fixture("whatsapp_inbound_text.json");
        let sig = switchboard::channels::whatsapp::signature(WA_SECRET, body.as_bytes());
        let r = json_webhook(&srv, "whatsapp", &wa_acc, &body, &[("x-hub-signature-256", sig)]).await;
        assert_eq!(r.status(), 200);
        let convs = conversations(&srv).await;
        assert_eq!(convs.len(), 1, "{backend:?}: one room for one person: {convs:?}");
        let room = id(&convs[0]);
        let texts: Vec<String> = messages(&srv, &room).await.iter().map(|m| m["text"].as_str().unwrap().to_string()).collect();
        assert_eq!(texts, ["texting you first", "Does it come in another color?"]);
        let last = messages(&srv, &room).await.pop().unwrap();
        assert_eq!(last["via"]["account_id"], wa_acc.as_str(), "{backend:?}: the message records where it came in: {last}");
        let people = participants(&api, &room).await;
        assert_eq!(people.len(), 1, "{people:?}");
        assert_eq!(people[0]["linked"][0]["address"], json!({"type": "whatsapp", "target": "+16505551234", "name": "Sheena Nelson"}));

        // The reply goes where they last wrote: WhatsApp.
        let (s, m) = api.post(&format!("/v1.0/conversations/{room}/messages"), json!({"text": "Blue and red"})).await;
        assert_eq!(s, 201, "{m}");
        assert_eq!(m["deliveries"][0]["account_id"], wa_acc.as_str(), "{m}");
        let out = graph.wait_for(1).await;
        assert_eq!(out[0].json()["to"], "16505551234");
        // …unless the sender names the account.
        let (s, m) = api
            .post(&format!("/v1.0/conversations/{room}/messages"), json!({"text": "By SMS too", "via": {"account_id": sms_acc}}))
            .await;
        assert_eq!((s, m["deliveries"][0]["account_id"].as_str()), (201, Some(sms_acc.as_str())), "{m}");
        let sent = twilio_api.wait_for(1).await;
        assert_eq!(sent[0].form_field("To").as_deref(), Some("+16505551234"));
        assert_eq!(graph.requests().len(), 1, "{backend:?}: WhatsApp got only the first reply");

        // One contact holds both addresses.
        let cid = people[0]["contact_id"].as_str().unwrap();
        let (_, c) = api.get(&format!("/v1.0/contacts/{cid}")).await;
        let mut kinds: Vec<&str> = c["addresses"].as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap()).collect();
        kinds.sort();
        assert_eq!(kinds, ["tel", "whatsapp"], "{c}");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn export_then_erasure_leaves_no_text_of_the_contact() {
    on_every_backend(async |backend| {
        let srv = TestServer::start_on(backend, config()).await;
        let api = srv.api(KEY_A);
        let acc = twilio(&srv, "http://127.0.0.1:9", "+15005550006", "account").await;
        sms(&srv, &acc, "+14155550100", "SM21", "my card ends in 4242").await;
        let room = id(&conversations(&srv).await[0]);
        let (s, _) = api.post(&format!("/v1.0/conversations/{room}/messages"), json!({"text": "noted, thanks"})).await;
        assert_eq!(s, 201);
        let cid = participants(&api, &room).await[0]["contact_id"].as_str().unwrap().to_string();

        let (s, x) = api.get(&format!("/v1.0/contacts/{cid}/export")).await;
        assert_eq!(s, 200, "{x}");
        assert_eq!(x["contact"]["id"], cid.as_str());
        assert_eq!(x["conversations"][0]["messages"][0]["text"], "my card ends in 4242", "{x}");
        assert_eq!(x["conversations"][0]["messages"].as_array().unwrap().len(), 1, "only what they wrote");

        assert_eq!(api.delete(&format!("/v1.0/contacts/{cid}?erase=true")).await.0, 204);
        let history = messages(&srv, &room).await;
        assert_eq!(history.len(), 2, "{backend:?}: seqs kept");
        let dump =
            json!([history, api.get(&format!("/v1.0/conversations/{room}")).await.1, participants(&api, &room).await])
                .to_string();
        for secret in ["4242", "4155550100"] {
            assert!(!dump.contains(secret), "{backend:?}: `{secret}` survived erasure: {dump}");
        }
        assert!(history[0]["deleted_at"].is_string());
        assert_eq!(history[1]["text"], "noted, thanks", "what others wrote stays");
        assert_eq!(api.get(&format!("/v1.0/contacts/{cid}")).await.0, 404);
        assert!(ids(&api.get("/v1.0/contacts?address=tel:%2B14155550100").await.1).is_empty());
        assert_eq!(api.delete(&format!("/v1.0/contacts/{cid}?erase=true")).await.0, 204, "idempotent");

        // The number is free: writing again opens a new room with a new contact.
        sms(&srv, &acc, "+14155550100", "SM22", "hello again").await;
        assert_eq!(conversations(&srv).await.len(), 2, "{backend:?}");
        srv.stop().await;
    })
    .await;
}
