//! Facebook Messenger and Instagram Direct: the Messenger Platform's webhooks and Send API.
//!
//! Both are Meta platforms with the same webhook (subscription handshake and
//! `X-Hub-Signature-256`, in `meta`) and the same `messaging` events: `entry[].messaging[]`
//! with `sender.id` (the page- or Instagram-scoped user id, our peer), `recipient.id` (the
//! page or Instagram account: entries for another one are skipped, Meta sends one webhook per
//! app), and one of `message` (text and/or `attachments` with a public `payload.url`, re-hosted
//! like any provider URL; `is_echo` — our own sends coming back — ignored), `delivery`
//! (`mids`: delivered) or `read` (Messenger: a `watermark` time, Instagram: the `mid` read).
//! Webhooks carry no names: a new peer's name is read once from the Graph API.
//! Outbound: `POST /{version}/{page or instagram id}/messages` with the bearer token; text as
//! `message.text`, one media as an attachment (`image`, `video`, `audio`, else `file`) — text
//! and a media are two sends, the text first, since a Send API message carries one or the other.
//! This module does not own the 24-hour window (`conversations::window`).

use super::meta::{GRAPH_VERSION, str_of};
use super::{HookRequest, Inbound, InboundMessage, Outgoing, Provider, ReadReceipt, SendOutcome, StatusUpdate};
use crate::error::Error;
use crate::model::{Account, Address, AddressType, Media, MessageStatus, ProviderKind};
use async_trait::async_trait;
use serde_json::{Value, json};

/// Facebook Messenger, by a Facebook page.
#[derive(Debug)]
pub struct Messenger;

/// Instagram Direct, by an Instagram professional account.
#[derive(Debug)]
pub struct Instagram;

/// What tells the two platforms apart.
struct Platform {
    object: &'static str,
    kind: AddressType,
    /// Credential naming our page / Instagram account (the webhook's `recipient.id`).
    id_key: &'static str,
    token_key: &'static str,
    /// Profile fields asked for a peer's name.
    profile_fields: &'static str,
}

const MESSENGER: Platform = Platform {
    object: "page",
    kind: AddressType::Messenger,
    id_key: "page_id",
    token_key: "page_access_token",
    profile_fields: "first_name,last_name",
};

const INSTAGRAM: Platform = Platform {
    object: "instagram",
    kind: AddressType::Instagram,
    id_key: "instagram_id",
    token_key: "access_token",
    profile_fields: "name,username",
};

/// A message's text; an attachment-only message reads `[image]`, `[file]`… (an empty message
/// would be refused by the post path, and Meta would retry it forever).
fn text_of(m: &Value) -> String {
    let text = str_of(m, "text").to_string();
    if !text.trim().is_empty() {
        return text;
    }
    let kinds: Vec<String> = attachments(m).map(|a| format!("[{}]", str_of(a, "type"))).collect();
    if kinds.is_empty() { "[message]".into() } else { kinds.join(" ") }
}

fn attachments(m: &Value) -> impl Iterator<Item = &Value> {
    m["attachments"].as_array().map(Vec::as_slice).unwrap_or_default().iter()
}

/// The medias of a message: every attachment with a URL (location, fallback and the like have
/// none, and stay text).
fn medias_of(m: &Value) -> Vec<Media> {
    attachments(m)
        .filter_map(|a| {
            let url = str_of(&a["payload"], "url");
            let ct = match str_of(a, "type") {
                "image" => "image/jpeg",
                "video" => "video/mp4",
                "audio" => "audio/mpeg",
                "file" => "application/octet-stream",
                _ => return None,
            };
            (url.starts_with("https://") || url.starts_with("http://")).then(|| Media::link(url, ct))
        })
        .collect()
}

/// The Send API attachment type for `m`.
fn attachment_type(m: &Media) -> &'static str {
    let ct = m.content_type.as_str();
    if ct.starts_with("image/") && ct != "image/svg+xml" {
        "image"
    } else if ct.starts_with("video/") {
        "video"
    } else if ct.starts_with("audio/") {
        "audio"
    } else {
        "file"
    }
}

/// The Send API bodies for one outgoing message, in order: the text (when there is one, with
/// links to medias beyond the first), then the first media as an attachment.
pub fn bodies(out: &Outgoing<'_>) -> Vec<Value> {
    let mut common = json!({"recipient": {"id": out.to}, "messaging_type": "RESPONSE"});
    if let Some(tag) = out.tag {
        common["messaging_type"] = json!("MESSAGE_TAG");
        common["tag"] = json!(tag);
    }
    let with = |message: Value| {
        let mut b = common.clone();
        b["message"] = message;
        b
    };
    let mut text = out.text.to_string();
    for m in out.medias.iter().skip(1) {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&m.url);
    }
    let mut v = Vec::new();
    if !text.is_empty() {
        v.push(with(json!({"text": text})));
    }
    if let Some(m) = out.medias.first() {
        let payload = json!({"url": m.url, "is_reusable": true});
        v.push(with(json!({"attachment": {"type": attachment_type(m), "payload": payload}})));
    }
    v
}

impl Platform {
    fn parse(&self, account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
        if let Some(handshake) = super::meta::challenge(req)? {
            return Ok(handshake);
        }
        let v: Value =
            serde_json::from_slice(&req.body).map_err(|e| Error::bad_request(format!("invalid webhook JSON: {e}")))?;
        if str_of(&v, "object") != self.object {
            // Another product's webhook (a page feed change…): acknowledged, nothing to do.
            return Ok(Inbound::default());
        }
        let entries = v["entry"].as_array().ok_or_else(|| Error::bad_request("entry is missing"))?;
        let ours = account.secret(self.id_key)?;
        let mut inbound = Inbound::default();
        for e in entries.iter().filter_map(|e| e["messaging"].as_array()).flatten() {
            let (from, to) = (str_of(&e["sender"], "id"), str_of(&e["recipient"], "id"));
            if from.is_empty() {
                return Err(Error::bad_request("a messaging event lacks sender.id"));
            }
            if !to.is_empty() && to != ours {
                continue;
            }
            let peer = Address { kind: self.kind, target: from.into(), name: String::new() };
            let m = &e["message"];
            if m.is_object() {
                if m["is_echo"].as_bool() == Some(true) {
                    continue;
                }
                let id = str_of(m, "mid");
                if id.is_empty() {
                    return Err(Error::bad_request("a message lacks mid"));
                }
                inbound.messages.push(InboundMessage {
                    provider_message_id: id.into(),
                    from: peer,
                    text: text_of(m),
                    medias: medias_of(m),
                    thread: None,
                    files: Vec::new(),
                    sent_at: super::meta::timestamp(&e["timestamp"]),
                });
                continue;
            }
            for mid in e["delivery"]["mids"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(id) = mid.as_str().filter(|s| !s.is_empty()) {
                    let status = MessageStatus::Delivered;
                    inbound.statuses.push(StatusUpdate { provider_message_id: id.into(), status, error: None });
                }
            }
            let read = &e["read"];
            if read.is_object() {
                let mid = Some(str_of(read, "mid").to_string()).filter(|s| !s.is_empty());
                let watermark = super::meta::timestamp(&read["watermark"]);
                if let Some(id) = &mid {
                    // Instagram reports no deliveries: a message read was delivered.
                    let status = MessageStatus::Delivered;
                    inbound.statuses.push(StatusUpdate { provider_message_id: id.clone(), status, error: None });
                }
                if mid.is_some() || watermark.is_some() {
                    inbound.reads.push(ReadReceipt { from: peer, provider_message_id: mid, watermark });
                }
            }
        }
        Ok(inbound)
    }

    async fn send(
        &self,
        p: &dyn Provider,
        http: &reqwest::Client,
        account: &Account,
        out: &Outgoing<'_>,
    ) -> SendOutcome {
        let (id, token) = match (super::send_secret(account, self.id_key), super::send_secret(account, self.token_key))
        {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let url = format!("{}/{GRAPH_VERSION}/{id}/messages", super::api_base(p, account));
        let mut last = None;
        for body in bodies(out) {
            let req = super::traced(http.post(&url), out).bearer_auth(token).json(&body);
            match super::meta::call(req).await {
                Ok(v) => last = v["message_id"].as_str().map(str::to_string),
                Err(o) => return o,
            }
        }
        match last {
            Some(id) => SendOutcome::Sent { provider_message_id: id },
            None => SendOutcome::Failed { error: format!("{} answered without a message_id", p.name()) },
        }
    }

    async fn profile_name(
        &self,
        p: &dyn Provider,
        http: &reqwest::Client,
        account: &Account,
        id: &str,
    ) -> Option<String> {
        let token = account.secret(self.token_key).ok()?;
        super::meta::profile_name(http, super::api_base(p, account), token, id, self.profile_fields).await
    }
}

macro_rules! meta_messaging {
    ($t:ty, $platform:expr, $kind:expr, $creds:expr, $base:expr, $max:expr) => {
        #[async_trait]
        impl Provider for $t {
            fn kind(&self) -> ProviderKind {
                $kind
            }
            fn channel(&self) -> AddressType {
                $platform.kind
            }
            fn required_credentials(&self) -> &'static [&'static str] {
                $creds
            }
            fn default_api_base(&self) -> &'static str {
                $base
            }
            fn max_text_chars(&self) -> usize {
                $max
            }
            fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error> {
                super::meta::verify(account, req)
            }
            async fn parse(&self, account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
                $platform.parse(account, req)
            }
            async fn send(&self, http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome {
                $platform.send(self, http, account, out).await
            }
            async fn profile_name(&self, http: &reqwest::Client, account: &Account, id: &str) -> Option<String> {
                $platform.profile_name(self, http, account, id).await
            }
        }
    };
}

meta_messaging!(
    Messenger,
    MESSENGER,
    ProviderKind::Messenger,
    &["page_access_token", "app_secret", "verify_token", "page_id"],
    "https://graph.facebook.com",
    2000
);
meta_messaging!(
    Instagram,
    INSTAGRAM,
    ProviderKind::Instagram,
    &["access_token", "app_secret", "verify_token", "instagram_id"],
    "https://graph.instagram.com",
    1000
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{self, req};

    fn account() -> Account {
        let credentials = json!({"app_secret": "s", "verify_token": "vt", "page_id": "1234"});
        test_support::account("messenger", "messenger", credentials)
    }

    #[tokio::test]
    async fn parses_messages_receipts_and_skips_echoes_and_other_pages() {
        let body = json!({"object": "page", "entry": [{"id": "1234", "time": 1, "messaging": [
            {"sender": {"id": "77"}, "recipient": {"id": "1234"}, "timestamp": 1_700_000_000_000_i64,
             "message": {"mid": "m_1", "attachments": [{"type": "image", "payload": {"url": "https://cdn/x.jpg"}}]}},
            {"sender": {"id": "1234"}, "recipient": {"id": "77"}, "message": {"mid": "m_2", "is_echo": true, "text": "ours"}},
            {"sender": {"id": "78"}, "recipient": {"id": "9999"}, "message": {"mid": "m_3", "text": "not ours"}},
            {"sender": {"id": "77"}, "recipient": {"id": "1234"}, "delivery": {"mids": ["m_9"], "watermark": 1}},
            {"sender": {"id": "77"}, "recipient": {"id": "1234"}, "read": {"watermark": 1_700_000_000_000_i64}}]}]});
        let i = Messenger.parse(&account(), &req(&body.to_string())).await.unwrap();
        assert_eq!(i.messages.len(), 1);
        assert_eq!(
            (i.messages[0].text.as_str(), i.messages[0].medias[0].url.as_str()),
            ("[image]", "https://cdn/x.jpg")
        );
        assert_eq!(i.statuses[0].provider_message_id, "m_9");
        assert!(i.reads[0].watermark.is_some() && i.reads[0].provider_message_id.is_none());
    }

    #[test]
    fn text_and_a_media_are_two_sends_and_a_tag_is_carried() {
        let img = [Media::link("https://x/a.png", "image/png")];
        let out = Outgoing {
            to: "77",
            text: "hi",
            medias: &img,
            status_callback: "",
            key: "k",
            request_id: "",
            tag: None,
            template: None,
        };
        let b = bodies(&out);
        assert_eq!(b[0]["message"], json!({"text": "hi"}));
        assert_eq!(b[1]["message"]["attachment"]["type"], "image");
        let out = Outgoing { tag: Some("HUMAN_AGENT"), medias: &[], ..out };
        let b = bodies(&out);
        assert_eq!(
            (b.len(), b[0]["messaging_type"].as_str(), b[0]["tag"].as_str()),
            (1, Some("MESSAGE_TAG"), Some("HUMAN_AGENT"))
        );
    }
}
