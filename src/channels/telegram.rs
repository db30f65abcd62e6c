//! Telegram Bot API.
//!
//! Inbound: one `Update` JSON per request, authenticated by the `X-Telegram-Bot-Api-Secret-Token`
//! header that Telegram echoes from `setWebhook(secret_token)`. Only `message` updates become
//! messages (edits, channel posts, callbacks… are acknowledged and dropped). The peer is the
//! chat (`chat.id`): in a private chat that is the user, in a group the group.
//! Telegram sends file ids, not URLs: turning one into a download URL takes a `getFile` call
//! and the URL embeds the bot token, so a photo (largest size) or document arrives as a media
//! whose URL is our signed proxy (`channels::media`), next to a `[photo] caption` text.
//! Outbound: `sendMessage`, or `sendPhoto` / `sendMediaGroup` for images with a short caption;
//! other media degrade to links. No delivery callbacks: `sent` is final.
//! Credentials: `bot_token`, `secret_token`.

use super::{HookRequest, Inbound, InboundMessage, Outgoing, Provider, SendOutcome};
use crate::error::Error;
use crate::model::{Account, Address, AddressType, Media, ProviderKind};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug)]
pub struct Telegram;

/// Telegram's cap on a photo caption (message text may be 4,096).
const MAX_CAPTION: usize = 1024;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// `[kind detail]`, or `[kind]` when there is no detail.
fn tag(kind: &str, detail: &str) -> String {
    if detail.is_empty() { format!("[{kind}]") } else { format!("[{kind} {detail}]") }
}

/// A photo (its largest size) or document, by file id: downloading needs the bot token in the
/// URL, so the stored message gets our signed proxy URL and `fetch_media` does the download.
fn media_of(m: &Value) -> Vec<Media> {
    let (id, ct) = if let Some(largest) = m["photo"].as_array().and_then(|p| p.last()) {
        (str_of(largest, "file_id"), "image/jpeg")
    } else {
        (str_of(&m["document"], "file_id"), str_of(&m["document"], "mime_type"))
    };
    if id.is_empty() {
        return vec![];
    }
    vec![Media::link(format!("{}{id}", super::media::MEDIA_REF), ct.to_string())]
}

/// The text of a message, with a placeholder for what we cannot carry as media.
fn text_of(m: &Value) -> String {
    if let Some(t) = m["text"].as_str() {
        return t.to_string();
    }
    let caption = str_of(m, "caption");
    let kind = if m["photo"].is_array() {
        "[photo]".to_string()
    } else if m["document"].is_object() {
        tag("document", str_of(&m["document"], "file_name"))
    } else if m["sticker"].is_object() {
        tag("sticker", str_of(&m["sticker"], "emoji"))
    } else if m["location"].is_object() {
        let l = &m["location"];
        format!("[location] ({}, {})", l["latitude"].as_f64().unwrap_or(0.0), l["longitude"].as_f64().unwrap_or(0.0))
    } else if m["contact"].is_object() {
        let c = &m["contact"];
        format!("[contact] {} {}", str_of(c, "first_name"), str_of(c, "phone_number"))
    } else {
        ["video", "voice", "audio", "animation", "video_note", "poll", "dice"]
            .iter()
            .find(|k| !m[**k].is_null())
            .map_or_else(|| "[unsupported message]".to_string(), |k| format!("[{k}]"))
    };
    if caption.is_empty() { kind } else { format!("{kind} {caption}") }
}

/// A display name for the chat: its title (groups), else the sender's name or username.
fn name_of(m: &Value) -> String {
    if let Some(t) = m["chat"]["title"].as_str() {
        return t.to_string();
    }
    let from = &m["from"];
    let full = format!("{} {}", str_of(from, "first_name"), str_of(from, "last_name")).trim().to_string();
    if full.is_empty() { str_of(from, "username").to_string() } else { full }
}

/// `chat_id` as Telegram takes it: the number when `to` is one, else `@channelusername`.
fn chat_id(to: &str) -> Value {
    to.parse::<i64>().map_or_else(|_| json!(to), |n| json!(n))
}

/// The API method and body for one outgoing message.
fn request(out: &Outgoing<'_>) -> (&'static str, Value) {
    let is_image = |m: &&Media| m.content_type.starts_with("image/");
    let images: Vec<&Media> = out.medias.iter().filter(is_image).take(10).collect();
    let caption_fits = out.text.chars().count() <= MAX_CAPTION;
    let chat = chat_id(out.to);
    if !images.is_empty() && caption_fits && images.len() == out.medias.len() {
        if let [one] = images.as_slice() {
            let mut body = json!({"chat_id": chat, "photo": one.url});
            if !out.text.is_empty() {
                body["caption"] = json!(out.text);
            }
            return ("sendPhoto", body);
        }
        let media: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut o = json!({"type": "photo", "media": m.url});
                if i == 0 && !out.text.is_empty() {
                    o["caption"] = json!(out.text);
                }
                o
            })
            .collect();
        return ("sendMediaGroup", json!({"chat_id": chat, "media": media}));
    }
    // One other file: sendVideo / sendAudio / sendDocument by URL, the text as its caption.
    if let [m] = out.medias
        && caption_fits
    {
        let (method, field) = match m.content_type.as_str() {
            "video/mp4" => ("sendVideo", "video"),
            "audio/mpeg" | "audio/mp4" => ("sendAudio", "audio"),
            _ => ("sendDocument", "document"),
        };
        let mut body = json!({"chat_id": chat, field: m.url});
        if !out.text.is_empty() {
            body["caption"] = json!(out.text);
        }
        return (method, body);
    }
    // Anything else degrades to links below the text.
    let mut text = out.text.to_string();
    for m in out.medias {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&m.url);
    }
    ("sendMessage", json!({"chat_id": chat, "text": text}))
}

#[async_trait]
impl Provider for Telegram {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Telegram
    }
    fn channel(&self) -> AddressType {
        AddressType::Telegram
    }
    fn required_credentials(&self) -> &'static [&'static str] {
        &["bot_token", "secret_token"]
    }
    fn default_api_base(&self) -> &'static str {
        "https://api.telegram.org"
    }
    fn max_text_chars(&self) -> usize {
        4096
    }

    fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error> {
        let given = req
            .header("x-telegram-bot-api-secret-token")
            .ok_or_else(|| Error::Forbidden("missing X-Telegram-Bot-Api-Secret-Token".into()))?;
        let expected = super::verify_secret(account, "secret_token")?;
        if crate::auth::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(Error::Forbidden("X-Telegram-Bot-Api-Secret-Token does not match".into()))
        }
    }

    async fn parse(&self, _account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
        let u: Value = serde_json::from_slice(&req.body)
            .map_err(|e| Error::bad_request(format!("invalid Telegram update: {e}")))?;
        if u["update_id"].as_i64().is_none() {
            return Err(Error::bad_request("update_id is missing"));
        }
        let mut inbound = Inbound::default();
        let m = &u["message"];
        if !m.is_object() {
            return Ok(inbound);
        }
        let (Some(chat), Some(id)) = (m["chat"]["id"].as_i64(), m["message_id"].as_i64()) else {
            return Err(Error::bad_request("message.chat.id or message.message_id is missing"));
        };
        inbound.messages.push(InboundMessage {
            // Stable across Telegram's redeliveries, and the same shape as our outbound ids.
            provider_message_id: format!("{chat}:{id}"),
            from: Address { kind: AddressType::Telegram, target: chat.to_string(), name: name_of(m) },
            text: text_of(m),
            medias: media_of(m),
            thread: None,
            sent_at: None,
            files: Vec::new(),
        });
        Ok(inbound)
    }

    async fn fetch_media(
        &self,
        http: &reqwest::Client,
        account: &Account,
        reference: &str,
    ) -> Result<(String, crate::media::ByteStream), Error> {
        let token = account.secret("bot_token")?;
        let base = format!("{}/bot{token}", super::api_base(self, account));
        let id: String = form_urlencoded::byte_serialize(reference.as_bytes()).collect();
        let (_, meta) = super::media::download(http, &format!("{base}/getFile?file_id={id}"), None).await?;
        let meta: Value = serde_json::from_slice(&meta).map_err(|_| Error::unavailable("bad getFile answer"))?;
        let path = meta["result"]["file_path"].as_str().ok_or(Error::NotFound("media"))?;
        let file = format!("{}/file/bot{token}/{path}", super::api_base(self, account));
        super::media::download_stream(http, &file, None).await
    }

    async fn send(&self, http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome {
        let (method, body) = request(out);
        let token = match super::send_secret(account, "bot_token") {
            Ok(t) => t,
            Err(e) => return e,
        };
        let url = format!("{}/bot{token}/{method}", super::api_base(self, account));
        let res = match super::traced(http.post(url), out).json(&body).send().await {
            Ok(r) => r,
            // The URL holds the bot token: keep it out of the error we store and log.
            Err(e) => return super::outcome_for_error(&e.without_url()),
        };
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            // Telegram says how long to wait in the body, not in a Retry-After header.
            let after = v["parameters"]["retry_after"].as_u64().map(Duration::from_secs);
            return SendOutcome::Retry { after, error: format!("HTTP 429: {}", str_of(&v, "description")) };
        }
        if let Some(o) = super::outcome_for_status(status, None, &text) {
            return o;
        }
        if v["ok"] != true {
            return SendOutcome::Failed {
                error: format!("Telegram refused the message: {}", str_of(&v, "description")),
            };
        }
        // sendMediaGroup answers with an array of messages; the others with one.
        let sent = if v["result"].is_array() { &v["result"][0] } else { &v["result"] };
        match sent["message_id"].as_i64() {
            Some(id) => {
                let chat = sent["chat"]["id"].as_i64().map_or_else(|| out.to.to_string(), |c| c.to_string());
                SendOutcome::Sent { provider_message_id: format!("{chat}:{id}") }
            }
            None => SendOutcome::Failed { error: "Telegram answered without a message_id".into() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{self, req};

    fn account() -> Account {
        test_support::account("telegram", "telegram", json!({"secret_token": "tok"}))
    }

    #[test]
    fn secret_token_must_match() {
        let mut r = req("{}");
        assert!(Telegram.verify(&account(), &r).is_err());
        r.headers.insert("x-telegram-bot-api-secret-token", "nope".parse().unwrap());
        assert!(Telegram.verify(&account(), &r).is_err());
        r.headers.insert("x-telegram-bot-api-secret-token", "tok".parse().unwrap());
        assert!(Telegram.verify(&account(), &r).is_ok());
    }

    #[tokio::test]
    async fn parses_text_and_photo_and_ignores_other_updates() {
        let text = json!({"update_id": 1, "message": {"message_id": 7, "date": 1, "text": "hi",
            "from": {"id": 42, "is_bot": false, "first_name": "Ann", "username": "ann"}, "chat": {"id": 42, "type": "private", "first_name": "Ann"}}});
        let m = &Telegram.parse(&account(), &req(&text.to_string())).await.unwrap().messages[0];
        assert_eq!(
            (m.provider_message_id.as_str(), m.from.target.as_str(), m.from.name.as_str(), m.text.as_str()),
            ("42:7", "42", "Ann", "hi")
        );
        let photo = json!({"update_id": 2, "message": {"message_id": 8, "date": 1, "caption": "look",
            "photo": [{"file_id": "AgAD", "file_unique_id": "x", "width": 90, "height": 90}],
            "from": {"id": 42, "is_bot": false, "first_name": "Ann"}, "chat": {"id": 42, "type": "private"}}});
        assert_eq!(
            Telegram.parse(&account(), &req(&photo.to_string())).await.unwrap().messages[0].text,
            "[photo] look"
        );
        let edit = json!({"update_id": 3, "edited_message": {"message_id": 7, "text": "hey", "chat": {"id": 42}}});
        assert!(Telegram.parse(&account(), &req(&edit.to_string())).await.unwrap().messages.is_empty());
        assert!(Telegram.parse(&account(), &req("[]")).await.is_err());
    }

    #[test]
    fn chooses_the_method_by_media() {
        let media = |url: &str, ct: &str| Media::link(url, ct);
        let send = |text: &str, medias: &[Media]| {
            request(&Outgoing {
                to: "42",
                text,
                medias,
                status_callback: "",
                key: "k",
                request_id: "",
                tag: None,
                template: None,
            })
        };
        assert_eq!(send("hi", &[]), ("sendMessage", json!({"chat_id": 42, "text": "hi"})));
        let a = media("https://x/a.png", "image/png");
        assert_eq!(
            send("hi", std::slice::from_ref(&a)),
            ("sendPhoto", json!({"chat_id": 42, "photo": "https://x/a.png", "caption": "hi"}))
        );
        let (m, b) = send("", &[a.clone(), media("https://x/b.jpg", "image/jpeg")]);
        assert_eq!(
            (m, b["media"][1]["media"].as_str(), b["media"][0].get("caption")),
            ("sendMediaGroup", Some("https://x/b.jpg"), None)
        );
        let (m, b) = send("hi", &[a.clone(), media("https://x/c.pdf", "application/pdf")]);
        assert_eq!((m, b["text"].as_str()), ("sendMessage", Some("hi\nhttps://x/a.png\nhttps://x/c.pdf")));
        let (m, _) = send(&"x".repeat(2000), &[a]);
        assert_eq!(m, "sendMessage", "a caption over 1,024 characters cannot go with the photo");
        assert_eq!(chat_id("@news"), json!("@news"));
    }
}
