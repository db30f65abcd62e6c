//! Viber bots (the REST bot API).
//!
//! Inbound: `POST` JSON callbacks signed with `X-Viber-Content-Signature: <hex HMAC-SHA256(auth
//! token, raw body)>`. `event: message` carries `sender` (`id` is our peer, `name` its name)
//! and `message` (`text`, or `picture`/`video`/`file`/`sticker` with a public `media` URL,
//! re-hosted like any provider URL); `delivered`, `seen` and `failed` report on what we sent by
//! its `message_token`; `webhook` (Viber checking the URL when the operator registers it with
//! `set_webhook`), `subscribed`, `unsubscribed` and `conversation_started` are acknowledged and
//! dropped. Registering the webhook is left to the operator.
//! Outbound: `POST /pa/send_message` with `X-Viber-Auth-Token`; Viber answers HTTP 200 with a
//! `status` (0 = ok, else an error: the bot API's own codes, a few of them transient). One
//! image goes as a `picture` with the text, one other media as a `file` (Viber wants its size
//! and name), several as links in the text.
//! Credentials: `auth_token`. `address` is the bot's name, the `sender.name` of every send.

use super::meta::str_of;
use super::{HookRequest, Inbound, InboundMessage, Outgoing, Provider, ReadReceipt, SendOutcome, StatusUpdate};
use crate::error::Error;
use crate::model::{Account, Address, AddressType, Media, MessageStatus, ProviderKind};
use async_trait::async_trait;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct Viber;

/// The `X-Viber-Content-Signature` header value for `body`.
pub fn signature(auth_token: &str, body: &[u8]) -> String {
    super::meta::hmac_hex(auth_token, body)
}

/// Longest picture caption Viber takes.
const MAX_CAPTION: usize = 768;

/// Viber `status` codes worth a retry: 12 (`tooManyRequests`).
const TRANSIENT: &[i64] = &[12];

/// `message_token` as a string: Viber sends a 64-bit number.
fn token_of(v: &Value) -> String {
    match &v["message_token"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

fn text_of(m: &Value) -> String {
    let kind = str_of(m, "type");
    let text = str_of(m, "text");
    let joined = |head: String| if text.is_empty() { head } else { format!("{head} {text}") };
    match kind {
        "text" if !text.trim().is_empty() => text.to_string(),
        "file" => joined(format!("[file {}]", str_of(m, "file_name")).replace(" ]", "]")),
        "location" => {
            let l = &m["location"];
            format!("[location] ({}, {})", l["lat"].as_f64().unwrap_or(0.0), l["lon"].as_f64().unwrap_or(0.0))
        }
        "contact" => format!("[contact] {} {}", str_of(&m["contact"], "name"), str_of(&m["contact"], "phone_number")),
        "url" => str_of(m, "media").to_string(),
        "" | "text" => "[message]".into(),
        other => joined(format!("[{other}]")),
    }
}

fn medias_of(m: &Value) -> Vec<Media> {
    let url = str_of(m, "media");
    let ct = match str_of(m, "type") {
        "picture" | "sticker" => "image/jpeg",
        "video" => "video/mp4",
        "file" => "application/octet-stream",
        _ => return vec![],
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return vec![];
    }
    let mut media = Media::link(url, ct);
    let name = str_of(m, "file_name");
    if !name.is_empty() {
        media.name = Some(name.chars().take(200).collect());
    }
    vec![media]
}

/// The `send_message` body for one outgoing message.
pub fn body(account: &Account, out: &Outgoing<'_>) -> Value {
    let sender: String = account.address.chars().take(28).collect();
    let mut b = json!({"receiver": out.to, "min_api_version": 1, "sender": {"name": sender}});
    match out.medias {
        [m] if m.content_type.starts_with("image/") && out.text.chars().count() <= MAX_CAPTION => {
            b["type"] = json!("picture");
            b["text"] = json!(out.text);
            b["media"] = json!(m.url);
        }
        [m] if out.text.is_empty() => {
            b["type"] = json!("file");
            b["media"] = json!(m.url);
            b["size"] = json!(m.size.unwrap_or(0));
            b["file_name"] = json!(m.name.as_deref().unwrap_or("file"));
        }
        medias => {
            let mut text = out.text.to_string();
            for m in medias {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&m.url);
            }
            b["type"] = json!("text");
            b["text"] = json!(text);
        }
    }
    b
}

#[async_trait]
impl Provider for Viber {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Viber
    }
    fn channel(&self) -> AddressType {
        AddressType::Viber
    }
    fn required_credentials(&self) -> &'static [&'static str] {
        &["auth_token"]
    }
    fn default_api_base(&self) -> &'static str {
        "https://chatapi.viber.com"
    }
    fn max_text_chars(&self) -> usize {
        7000
    }

    fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error> {
        let given = req
            .header("x-viber-content-signature")
            .ok_or_else(|| Error::Forbidden("missing X-Viber-Content-Signature".into()))?;
        let expected = signature(super::verify_secret(account, "auth_token")?, &req.body);
        if crate::auth::constant_time_eq(given.trim().to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(Error::Forbidden("X-Viber-Content-Signature does not match".into()))
        }
    }

    async fn parse(&self, _account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
        let v: Value = serde_json::from_slice(&req.body)
            .map_err(|e| Error::bad_request(format!("invalid Viber callback JSON: {e}")))?;
        let mut inbound = Inbound::default();
        let token = token_of(&v);
        match str_of(&v, "event") {
            "message" => {
                let from = str_of(&v["sender"], "id");
                if from.is_empty() || token.is_empty() {
                    return Err(Error::bad_request("a message lacks sender.id or message_token"));
                }
                let name: String = str_of(&v["sender"], "name").chars().take(200).collect();
                let m = &v["message"];
                inbound.messages.push(InboundMessage {
                    provider_message_id: token,
                    from: Address { kind: AddressType::Viber, target: from.into(), name },
                    text: text_of(m),
                    medias: medias_of(m),
                    thread: None,
                    files: Vec::new(),
                    sent_at: super::meta::timestamp(&v["timestamp"]),
                });
            }
            event @ ("delivered" | "seen" | "failed") if !token.is_empty() => {
                let (status, error) = match event {
                    "failed" => (MessageStatus::Failed, Some(format!("Viber: {}", str_of(&v, "desc")))),
                    _ => (MessageStatus::Delivered, None),
                };
                inbound.statuses.push(StatusUpdate { provider_message_id: token.clone(), status, error });
                let user = str_of(&v, "user_id");
                if event == "seen" && !user.is_empty() {
                    let from = Address { kind: AddressType::Viber, target: user.into(), name: String::new() };
                    inbound.reads.push(ReadReceipt { from, provider_message_id: Some(token), watermark: None });
                }
            }
            _ => {}
        }
        Ok(inbound)
    }

    async fn send(&self, http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome {
        let token = match super::send_secret(account, "auth_token") {
            Ok(t) => t,
            Err(e) => return e,
        };
        let url = format!("{}/pa/send_message", super::api_base(self, account));
        let req = super::traced(http.post(url), out).header("X-Viber-Auth-Token", token).json(&body(account, out));
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return super::outcome_for_error(&e),
        };
        let status = res.status();
        let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = res.text().await.unwrap_or_default();
        if let Some(o) = super::outcome_for_status(status, retry_after.as_deref(), &text) {
            return o;
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match v["status"].as_i64() {
            Some(0) if !token_of(&v).is_empty() => SendOutcome::Sent { provider_message_id: token_of(&v) },
            Some(code) => {
                let error = format!("Viber status {code}: {}", str_of(&v, "status_message"));
                if TRANSIENT.contains(&code) {
                    SendOutcome::Retry { after: None, error }
                } else {
                    SendOutcome::Failed { error }
                }
            }
            None => SendOutcome::Failed { error: "Viber answered without a status".into() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{self, req};

    fn account() -> Account {
        test_support::account("viber", "viber", json!({"auth_token": "tok"}))
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_body_under_the_token() {
        let mut r = req("{}");
        r.headers.insert("x-viber-content-signature", signature("tok", b"{}").parse().unwrap());
        assert!(Viber.verify(&account(), &r).is_ok());
        r.headers.insert("x-viber-content-signature", signature("other", b"{}").parse().unwrap());
        assert!(Viber.verify(&account(), &r).is_err());
    }

    #[tokio::test]
    async fn parses_messages_and_callbacks() {
        let m = json!({"event": "message", "timestamp": 1_457_764_197_627_i64, "message_token": 4_912_661_846_655_238_145_u64,
            "sender": {"id": "01234567890A=", "name": "John McClane"},
            "message": {"type": "picture", "text": "look", "media": "https://dl-media.viber.com/x.jpg"}});
        let i = Viber.parse(&account(), &req(&m.to_string())).await.unwrap();
        assert_eq!(i.messages[0].provider_message_id, "4912661846655238145");
        assert_eq!((i.messages[0].text.as_str(), i.messages[0].from.name.as_str()), ("[picture] look", "John McClane"));
        let seen = json!({"event": "seen", "timestamp": 1, "message_token": 7, "user_id": "01234567890A="});
        let i = Viber.parse(&account(), &req(&seen.to_string())).await.unwrap();
        assert_eq!((i.statuses[0].status, i.reads.len()), (MessageStatus::Delivered, 1));
        let hook = json!({"event": "webhook", "timestamp": 1, "message_token": 1});
        assert_eq!(Viber.parse(&account(), &req(&hook.to_string())).await.unwrap(), Inbound::default());
    }
}
