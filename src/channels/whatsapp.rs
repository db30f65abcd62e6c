//! WhatsApp Cloud API (Meta Graph API).
//!
//! Subscribing: Meta calls the webhook with `GET ?hub.mode=subscribe&hub.verify_token=..&
//! hub.challenge=..`; we echo the challenge when the token is the account's `verify_token`.
//! Inbound: `POST` JSON (`object: whatsapp_business_account`, entries of changes) signed with
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`. A change carries
//! `messages` from users and/or `statuses` of what we sent (sent → delivered → read, failed).
//! Meta sends one webhook per app, so changes for another phone number than the account's
//! `phone_number_id` are skipped. Media arrive as ids that need an authenticated Graph call to
//! resolve: the message keeps a `[image] caption` text and gets a media whose URL is our signed
//! proxy (`channels::media`), which resolves and downloads it on demand.
//! Outbound: `POST /v17.0/{phone_number_id}/messages` with a bearer access token; one image
//! goes as an image message (caption ≤ 1,024), anything else degrades to links in the text.
//! Credentials: `access_token`, `app_secret`, `verify_token`, `phone_number_id`.

use super::meta::{GRAPH_VERSION, str_of};
use super::{HookRequest, Inbound, InboundMessage, Outgoing, Provider, SendOutcome, StatusUpdate};
use crate::error::Error;
use crate::model::{Account, Address, AddressType, MessageStatus, ProviderKind};
use async_trait::async_trait;
use serde_json::{Value, json};

pub use super::meta::signature;

#[derive(Debug)]
pub struct WhatsApp;

const MAX_CAPTION: usize = 1024;

fn status(s: &str) -> Option<MessageStatus> {
    Some(match s {
        "sent" => MessageStatus::Sent,
        "delivered" | "read" => MessageStatus::Delivered,
        "failed" => MessageStatus::Failed,
        _ => return None,
    })
}

/// A media message's attachment, by reference: the bytes need an authenticated Graph API
/// call, which `fetch_media` makes when someone opens the (signed) URL we store instead.
fn media_of(m: &Value) -> Vec<crate::model::Media> {
    let kind = str_of(m, "type");
    let body = &m[kind];
    match (kind, str_of(body, "id")) {
        ("image" | "video" | "audio" | "sticker" | "document", id) if !id.is_empty() => {
            vec![crate::model::Media::link(format!("{}{id}", super::media::MEDIA_REF), str_of(body, "mime_type"))]
        }
        _ => vec![],
    }
}

/// The text of a user message; media and other kinds become `[kind] caption` placeholders.
fn text_of(m: &Value) -> String {
    let text = described(m);
    // An empty message would be refused by the post path, and Meta would retry it forever.
    if text.trim().is_empty() { format!("[{}]", str_of(m, "type")) } else { text }
}

fn described(m: &Value) -> String {
    let kind = str_of(m, "type");
    let body = &m[kind];
    let joined = |head: String, tail: &str| if tail.is_empty() { head } else { format!("{head} {tail}") };
    match kind {
        "text" => str_of(body, "body").to_string(),
        "image" | "video" | "sticker" | "audio" => joined(format!("[{kind}]"), str_of(body, "caption")),
        "document" => {
            let file = str_of(body, "filename");
            let head = if file.is_empty() { "[document]".to_string() } else { format!("[document {file}]") };
            joined(head, str_of(body, "caption"))
        }
        "location" => {
            let (lat, lon) = (body["latitude"].as_f64().unwrap_or(0.0), body["longitude"].as_f64().unwrap_or(0.0));
            let place: Vec<&str> =
                [str_of(body, "name"), str_of(body, "address")].into_iter().filter(|s| !s.is_empty()).collect();
            joined(joined("[location]".into(), &place.join(", ")), &format!("({lat}, {lon})"))
        }
        "button" => str_of(body, "text").to_string(),
        "interactive" => {
            let reply = if body["button_reply"].is_object() { &body["button_reply"] } else { &body["list_reply"] };
            str_of(reply, "title").to_string()
        }
        "reaction" => joined("[reaction]".into(), str_of(body, "emoji")),
        "" => "[message]".into(),
        other => format!("[{other}]"),
    }
}

/// One failed status's reason, from its first error.
fn status_error(s: &Value) -> Option<String> {
    let e = s["errors"].as_array()?.first()?;
    let title = e["title"].as_str().or_else(|| e["message"].as_str()).unwrap_or("failed");
    Some(match e["code"].as_i64() {
        Some(code) => format!("WhatsApp error {code}: {title}"),
        None => title.to_string(),
    })
}

/// The WhatsApp message type that carries `m` by link, if one does.
fn media_kind(m: &crate::model::Media, no_text: bool) -> Option<&'static str> {
    let ct = m.content_type.as_str();
    match ct {
        "image/jpeg" | "image/png" => Some("image"),
        "video/mp4" | "video/3gpp" => Some("video"),
        _ if ct.starts_with("audio/") => no_text.then_some("audio"),
        // WhatsApp renders no SVG, GIF or WebP (stickers) as an image: those go as documents.
        _ if m.media_id.is_some() || ct == "application/pdf" => Some("document"),
        _ => None,
    }
}

/// The request body for one outgoing message.
fn body(out: &Outgoing<'_>) -> Value {
    // We keep E.164 (`+1…`); WhatsApp names the peer by its wa_id, the same digits without `+`.
    let to = out.to.trim_start_matches('+');
    let base = json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to});
    if let Some(t) = out.template {
        return template_body(base, t);
    }
    // One media goes as a media message by link (the caption carries the text); audio takes
    // no caption, so audio with text, and several medias, degrade to links in a text message.
    let one = match out.medias {
        [m] if out.text.chars().count() <= MAX_CAPTION => media_kind(m, out.text.is_empty()).map(|k| (m, k)),
        _ => None,
    };
    let mut b = base;
    if let Some((m, kind)) = one {
        let mut obj = json!({"link": m.url});
        if !out.text.is_empty() {
            obj["caption"] = json!(out.text);
        }
        if kind == "document" {
            obj["filename"] = json!(m.name.as_deref().unwrap_or("file"));
        }
        b["type"] = json!(kind);
        b[kind] = obj;
    } else {
        let mut text = out.text.to_string();
        for m in out.medias {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&m.url);
        }
        b["type"] = json!("text");
        b["text"] = json!({"body": text});
    }
    b
}

/// A template message: the approved template by name and language, its body's parameters.
fn template_body(mut b: Value, t: &crate::model::TemplateSend) -> Value {
    let mut template = json!({"name": t.name, "language": {"code": t.language}});
    if !t.parameters.is_empty() {
        let params: Vec<Value> = t.parameters.iter().map(|p| json!({"type": "text", "text": p})).collect();
        template["components"] = json!([{"type": "body", "parameters": params}]);
    }
    b["type"] = json!("template");
    b["template"] = template;
    b
}

#[async_trait]
impl Provider for WhatsApp {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Whatsapp
    }
    fn channel(&self) -> AddressType {
        AddressType::Whatsapp
    }
    fn required_credentials(&self) -> &'static [&'static str] {
        &["access_token", "app_secret", "verify_token", "phone_number_id"]
    }
    fn default_api_base(&self) -> &'static str {
        "https://graph.facebook.com"
    }
    fn max_text_chars(&self) -> usize {
        4096
    }

    fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error> {
        super::meta::verify(account, req)
    }

    async fn parse(&self, account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
        if let Some(handshake) = super::meta::challenge(req)? {
            return Ok(handshake);
        }
        let v: Value = serde_json::from_slice(&req.body)
            .map_err(|e| Error::bad_request(format!("invalid WhatsApp webhook JSON: {e}")))?;
        let entries = v["entry"].as_array().ok_or_else(|| Error::bad_request("entry is missing"))?;
        let ours = account.secret("phone_number_id")?;
        let mut inbound = Inbound::default();
        let changes = entries.iter().filter_map(|e| e["changes"].as_array()).flatten();
        for value in changes.filter(|c| c["field"] == "messages").map(|c| &c["value"]) {
            let number = str_of(&value["metadata"], "phone_number_id");
            if !number.is_empty() && number != ours {
                continue;
            }
            let contacts = value["contacts"].as_array().map(Vec::as_slice).unwrap_or_default();
            for m in value["messages"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let (id, from) = (str_of(m, "id"), str_of(m, "from"));
                if id.is_empty() || from.is_empty() {
                    return Err(Error::bad_request("a message lacks id or from"));
                }
                let name = contacts.iter().find(|c| c["wa_id"] == from).map_or("", |c| str_of(&c["profile"], "name"));
                inbound.messages.push(InboundMessage {
                    provider_message_id: id.into(),
                    from: Address { kind: AddressType::Whatsapp, target: from.into(), name: name.into() },
                    text: text_of(m),
                    medias: media_of(m),
                    thread: None,
                    sent_at: super::meta::timestamp(&m["timestamp"]),
                    files: Vec::new(),
                });
            }
            for s in value["statuses"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let (Some(st), id) = (status(str_of(s, "status")), str_of(s, "id")) else { continue };
                if id.is_empty() {
                    continue;
                }
                let error = if st == MessageStatus::Failed { status_error(s) } else { None };
                inbound.statuses.push(StatusUpdate { provider_message_id: id.into(), status: st, error });
            }
        }
        Ok(inbound)
    }

    async fn fetch_media(
        &self,
        http: &reqwest::Client,
        account: &Account,
        reference: &str,
    ) -> Result<(String, crate::media::ByteStream), Error> {
        let token = account.secret("access_token")?;
        let url = format!("{}/{GRAPH_VERSION}/{reference}", super::api_base(self, account));
        let (_, meta) = super::media::download(http, &url, Some(token)).await?;
        let meta: Value = serde_json::from_slice(&meta).map_err(|_| Error::unavailable("bad media metadata"))?;
        let link = meta["url"].as_str().ok_or_else(|| Error::unavailable("media has no download url"))?;
        super::media::download_stream(http, link, Some(token)).await
    }

    async fn send(&self, http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome {
        let (number, token) =
            match (super::send_secret(account, "phone_number_id"), super::send_secret(account, "access_token")) {
                (Ok(n), Ok(t)) => (n, t),
                (Err(e), _) | (_, Err(e)) => return e,
            };
        let url = format!("{}/{GRAPH_VERSION}/{number}/messages", super::api_base(self, account));
        let v = match super::meta::call(super::traced(http.post(url), out).bearer_auth(token).json(&body(out))).await {
            Ok(v) => v,
            Err(o) => return o,
        };
        match v["messages"][0]["id"].as_str() {
            Some(id) => SendOutcome::Sent { provider_message_id: id.into() },
            None => SendOutcome::Failed { error: "WhatsApp answered without a message id".into() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{self, req, req_with};
    use crate::model::Media;
    use axum::http::Method;

    fn account() -> Account {
        let credentials = json!({"app_secret": "s", "verify_token": "vt", "phone_number_id": "106540352242922"});
        test_support::account("whatsapp", "whatsapp", credentials)
    }

    #[tokio::test]
    async fn get_handshake_echoes_the_challenge_only_for_our_token() {
        let ok = req_with(
            Method::GET,
            &[("hub.mode", "subscribe"), ("hub.verify_token", "vt"), ("hub.challenge", "1158201444")],
            "",
        );
        assert!(WhatsApp.verify(&account(), &ok).is_ok());
        assert_eq!(WhatsApp.parse(&account(), &ok).await.unwrap().challenge.as_deref(), Some("1158201444"));
        let bad =
            req_with(Method::GET, &[("hub.mode", "subscribe"), ("hub.verify_token", "x"), ("hub.challenge", "1")], "");
        assert!(WhatsApp.verify(&account(), &bad).is_err());
    }

    #[test]
    fn signature_is_prefixed_lowercase_hex() {
        let mut r = req("{}");
        r.headers.insert(
            "x-hub-signature-256",
            signature("s", b"{}").to_uppercase().replace("SHA256=", "sha256=").parse().unwrap(),
        );
        assert!(WhatsApp.verify(&account(), &r).is_ok());
        assert!(signature("s", b"{}").starts_with("sha256=") && signature("s", b"{}").len() == 7 + 64);
    }

    #[tokio::test]
    async fn parses_messages_statuses_and_skips_other_numbers() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
              "contacts": [{"profile": {"name": "Kerry"}, "wa_id": "16315551181"}],
              "messages": [{"from": "16315551181", "id": "wamid.A", "timestamp": "1", "type": "image", "image": {"id": "m1", "mime_type": "image/jpeg", "caption": "receipt"}}],
              "statuses": [{"id": "wamid.B", "status": "failed", "timestamp": "1", "recipient_id": "1", "errors": [{"code": 131047, "title": "Re-engagement message"}]},
                           {"id": "wamid.C", "status": "read", "timestamp": "1", "recipient_id": "1"}]}},
            {"field": "messages", "value": {"metadata": {"phone_number_id": "999"},
              "messages": [{"from": "1", "id": "wamid.D", "type": "text", "text": {"body": "not ours"}}]}}]}]});
        let i = WhatsApp.parse(&account(), &req(&body.to_string())).await.unwrap();
        assert_eq!(i.messages.len(), 1);
        assert_eq!((i.messages[0].text.as_str(), i.messages[0].from.name.as_str()), ("[image] receipt", "Kerry"));
        assert_eq!(i.statuses[0].error.as_deref(), Some("WhatsApp error 131047: Re-engagement message"));
        assert_eq!(i.statuses[1].status, MessageStatus::Delivered);
    }

    #[test]
    fn one_image_goes_as_image_else_links() {
        let img = [Media::link("https://x/a.png", "image/png")];
        let b = body(&Outgoing {
            to: "1",
            text: "hi",
            medias: &img,
            status_callback: "",
            key: "k",
            request_id: "",
            tag: None,
            template: None,
        });
        assert_eq!(
            (b["type"].as_str(), &b["image"]),
            (Some("image"), &json!({"link": "https://x/a.png", "caption": "hi"}))
        );
        let pdf = [Media::link("https://x/a.pdf", "application/pdf")];
        let b = body(&Outgoing {
            to: "1",
            text: "hi",
            medias: &pdf,
            status_callback: "",
            key: "k",
            request_id: "",
            tag: None,
            template: None,
        });
        assert_eq!(b["document"], json!({"link": "https://x/a.pdf", "caption": "hi", "filename": "file"}));
        let zip = [Media::link("https://x/a.zip", "application/zip")];
        let b = body(&Outgoing {
            to: "1",
            text: "hi",
            medias: &zip,
            status_callback: "",
            key: "k",
            request_id: "",
            tag: None,
            template: None,
        });
        assert_eq!(b["text"]["body"], "hi\nhttps://x/a.zip");
    }
}
