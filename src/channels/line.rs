//! LINE Messaging API.
//!
//! Inbound: a JSON `{destination, events: [..]}` webhook signed with `X-Line-Signature` =
//! base64 HMAC-SHA256(channel secret, raw body). Only `message` events become messages (text,
//! image, video, audio, file, sticker, location); follow/unfollow/postback… are acknowledged
//! and dropped. The peer is the user (`source.userId`) — or the group/room, since a push to a
//! `groupId`/`roomId` is how one answers there. Webhooks carry no display name. Media that
//! users send are LINE content, which only the channel access token can fetch: the message
//! keeps a signed media link of ours (`media.rs`) that fetches it with the token.
//! Outbound: `POST /v2/bot/message/push` with a bearer channel access token, at most five
//! message objects per request. LINE has no delivery callbacks, so `sent` is final.
//! Credentials: `channel_secret`, `channel_access_token`.

use super::{HookRequest, Inbound, InboundMessage, Outgoing, Provider, SendOutcome};
use crate::error::Error;
use crate::model::{Account, Address, AddressType, Media, ProviderKind};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug)]
pub struct Line;

/// LINE's documented cap on message objects in one push request.
const MAX_OBJECTS: usize = 5;

/// The `X-Line-Signature` of `body`.
pub fn signature(channel_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(channel_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Where LINE serves the bytes of message content (a host of its own, not `api.line.me`).
const DATA_API: &str = "https://api-data.line.me";

/// The media reference of LINE-hosted content, resolved into our signed link on the way in.
/// Fetching the content needs the channel access token, so nothing a browser could open.
fn content_ref(message_id: &str) -> String {
    format!("{}{message_id}", super::media::MEDIA_REF)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// Text and media of one LINE message object.
fn content(m: &Value) -> (String, Vec<Media>) {
    let id = str_of(m, "id");
    let media = |ct: &str| {
        // Content the user sent from outside LINE (`external`) has a public URL; use it.
        let url = m["contentProvider"]["originalContentUrl"].as_str().filter(|u| u.starts_with("https://"));
        vec![Media::link(url.map_or_else(|| content_ref(id), str::to_string), ct)]
    };
    match str_of(m, "type") {
        "text" => (str_of(m, "text").into(), vec![]),
        "image" => (String::new(), media("image/jpeg")),
        "video" => (String::new(), media("video/mp4")),
        "audio" => (String::new(), media("audio/m4a")),
        "file" => (format!("[file] {}", str_of(m, "fileName")).trim_end().into(), media("application/octet-stream")),
        "sticker" => {
            let sticker = str_of(m, "stickerId");
            let url = format!("https://stickershop.line-scdn.net/stickershop/v1/sticker/{sticker}/android/sticker.png");
            let medias = if sticker.is_empty() { vec![] } else { vec![Media::link(url, "image/png")] };
            ("[sticker]".into(), medias)
        }
        "location" => {
            let (lat, lon) = (m["latitude"].as_f64().unwrap_or(0.0), m["longitude"].as_f64().unwrap_or(0.0));
            let place: Vec<&str> =
                [str_of(m, "title"), str_of(m, "address")].into_iter().filter(|s| !s.is_empty()).collect();
            let place = if place.is_empty() { String::new() } else { format!("{} ", place.join(", ")) };
            (format!("[location] {place}({lat}, {lon})"), vec![])
        }
        other => (format!("[{}]", if other.is_empty() { "message" } else { other }), vec![]),
    }
}

/// The peer of an event: the user, or the group/room it was said in.
fn peer(source: &Value) -> Option<&str> {
    let key = match str_of(source, "type") {
        "group" => "groupId",
        "room" => "roomId",
        _ => "userId",
    };
    source[key].as_str().filter(|s| !s.is_empty())
}

/// Whether LINE shows `m` itself: an image, or an MP4 video with a preview image (LINE
/// requires one), all at HTTPS URLs.
fn is_visual(m: &Media) -> bool {
    let https = |u: &str| u.starts_with("https://");
    let video = m.content_type == "video/mp4" && m.preview_url.as_deref().is_some_and(https);
    (m.content_type.starts_with("image/") || video) && https(&m.url)
}

/// The object of one visual media (see [`is_visual`]); an image previews itself unless it
/// has a thumbnail.
fn visual(m: &Media) -> Value {
    let kind = if m.content_type.starts_with("video/") { "video" } else { "image" };
    let preview = m.preview_url.as_deref().filter(|p| p.starts_with("https://")).unwrap_or(&m.url);
    json!({"type": kind, "originalContentUrl": m.url, "previewImageUrl": preview})
}

/// The message objects of one push: text first, then images and videos (HTTPS only, videos
/// with a preview image, as LINE requires); other media, and visuals beyond the five-object
/// cap, degrade to links in a text object.
fn objects(text: &str, medias: &[Media]) -> Vec<Value> {
    let is_image = |m: &&Media| is_visual(m);
    let mut images: Vec<&Media> = medias.iter().filter(is_image).collect();
    let mut links: Vec<&str> = medias.iter().filter(|m| !is_image(m)).map(|m| m.url.as_str()).collect();
    let texts = usize::from(!text.is_empty());
    if images.len() > MAX_OBJECTS - texts - usize::from(!links.is_empty()) {
        // The overflow becomes links, which take one text object themselves.
        let room = MAX_OBJECTS - texts - 1;
        links.extend(images.drain(room..).map(|m| m.url.as_str()));
    }
    let mut out = Vec::new();
    if !text.is_empty() {
        out.push(json!({"type": "text", "text": text}));
    }
    if !links.is_empty() {
        out.push(json!({"type": "text", "text": links.join("\n")}));
    }
    out.extend(images.iter().map(|m| visual(m)));
    out
}

/// The first sent message id in a push (or 409 "already accepted") answer.
fn sent_id(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v["sentMessages"][0]["id"].as_str().map(str::to_string)
}

#[async_trait]
impl Provider for Line {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Line
    }
    fn channel(&self) -> AddressType {
        AddressType::Line
    }
    fn required_credentials(&self) -> &'static [&'static str] {
        &["channel_secret", "channel_access_token"]
    }
    fn default_api_base(&self) -> &'static str {
        "https://api.line.me"
    }
    fn max_text_chars(&self) -> usize {
        5000
    }

    fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error> {
        let given =
            req.header("x-line-signature").ok_or_else(|| Error::Forbidden("missing X-Line-Signature".into()))?;
        let expected = signature(super::verify_secret(account, "channel_secret")?, &req.body);
        if crate::auth::constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(Error::Forbidden("X-Line-Signature does not match".into()))
        }
    }

    async fn parse(&self, _account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
        let v: Value = serde_json::from_slice(&req.body)
            .map_err(|e| Error::bad_request(format!("invalid LINE webhook JSON: {e}")))?;
        let events = v["events"].as_array().ok_or_else(|| Error::bad_request("events is missing"))?;
        let mut inbound = Inbound::default();
        for e in events.iter().filter(|e| e["type"] == "message") {
            let m = &e["message"];
            let Some(target) = peer(&e["source"]) else { continue };
            // The message id survives redelivery (as does webhookEventId, the fallback).
            let id = m["id"].as_str().or_else(|| e["webhookEventId"].as_str()).unwrap_or("");
            if id.is_empty() {
                return Err(Error::bad_request("message.id is missing"));
            }
            let (text, medias) = content(m);
            inbound.messages.push(InboundMessage {
                provider_message_id: id.into(),
                from: Address { kind: AddressType::Line, target: target.into(), name: String::new() },
                text,
                medias,
                thread: None,
                sent_at: None,
                files: Vec::new(),
            });
        }
        Ok(inbound)
    }

    async fn fetch_media(
        &self,
        http: &reqwest::Client,
        account: &Account,
        reference: &str,
    ) -> Result<(String, crate::media::ByteStream), Error> {
        // LINE message ids are digits; anything else never came from `content_ref`.
        if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::NotFound("media"));
        }
        let token = account.secret("channel_access_token")?;
        // An `api_base_url` override (a gateway, the tests' stub) serves the content too.
        let base = account.api_base_url.as_deref().filter(|u| !u.is_empty()).unwrap_or(DATA_API);
        let url = format!("{}/v2/bot/message/{reference}/content", base.trim_end_matches('/'));
        super::media::download_stream(http, &url, Some(token)).await
    }

    async fn send(&self, http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome {
        let url = format!("{}/v2/bot/message/push", super::api_base(self, account));
        let body = json!({"to": out.to, "messages": objects(out.text, out.medias)});
        // The outbox hands us no stable id for a delivery attempt chain, and a key derived from
        // the content would silently drop a repeated "ok" within LINE's retry-key window. So the
        // key is fresh per attempt: harmless, but it cannot dedupe the outbox's own retries.
        // Same key for every retry of this piece, so LINE accepts it at most once (409 after).
        let retry_key = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, out.key.as_bytes()).to_string();
        let token = match super::send_secret(account, "channel_access_token") {
            Ok(t) => t,
            Err(e) => return e,
        };
        let res = super::traced(http.post(url), out)
            .bearer_auth(token)
            .header("x-line-retry-key", &retry_key)
            .json(&body)
            .send()
            .await;
        let res = match res {
            Ok(r) => r,
            Err(e) => return super::outcome_for_error(&e),
        };
        let status = res.status();
        let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let accepted =
            res.headers().get("x-line-accepted-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = res.text().await.unwrap_or_default();
        // 409 = this retry key was already accepted: the message went out.
        if status == reqwest::StatusCode::CONFLICT {
            let id = sent_id(&text).or(accepted).unwrap_or(retry_key);
            return SendOutcome::Sent { provider_message_id: id };
        }
        if let Some(o) = super::outcome_for_status(status, retry_after.as_deref(), &text) {
            return o;
        }
        // Older API versions answer `{}`: accepted all the same, keyed by our retry key.
        SendOutcome::Sent { provider_message_id: sent_id(&text).unwrap_or(retry_key) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{self, req};

    fn account() -> Account {
        test_support::account("line", "line", json!({"channel_secret": "s"}))
    }

    #[test]
    fn signature_is_base64_hmac_sha256_of_the_body() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a well-known vector.
        let sig = signature("key", b"The quick brown fox jumps over the lazy dog");
        assert_eq!(sig, STANDARD.encode(hex("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[tokio::test]
    async fn parses_text_image_sticker_and_skips_other_events() {
        let body = json!({"destination": "Uxxx", "events": [
            {"type": "follow", "source": {"type": "user", "userId": "U1"}},
            {"type": "message", "message": {"type": "text", "id": "1", "text": "hi"}, "source": {"type": "user", "userId": "U1"}},
            {"type": "message", "message": {"type": "image", "id": "2", "contentProvider": {"type": "line"}}, "source": {"type": "user", "userId": "U1"}},
            {"type": "message", "message": {"type": "sticker", "id": "3", "packageId": "446", "stickerId": "1988"}, "source": {"type": "group", "groupId": "C9", "userId": "U1"}},
            {"type": "message", "message": {"type": "text", "id": "4", "text": "no source"}, "source": {"type": "user"}},
        ]});
        let inbound = Line.parse(&account(), &req(&body.to_string())).await.unwrap();
        let m = &inbound.messages;
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].text.as_str(), m[0].from.target.as_str()), ("hi", "U1"));
        assert_eq!(m[1].medias[0].url, "provider-media:2");
        assert_eq!(m[2].text, "[sticker]");
        assert_eq!(m[2].from.target, "C9");
        assert!(m[2].medias[0].url.ends_with("/sticker/1988/android/sticker.png"));
        assert!(Line.parse(&account(), &req("not json")).await.is_err());
        assert!(Line.parse(&account(), &req(r#"{"destination":"U","events":[]}"#)).await.unwrap().messages.is_empty());
    }

    #[test]
    fn objects_respect_the_cap_and_degrade_non_images_to_links() {
        let img = |u: &str| Media::link(u, "image/png");
        let medias: Vec<Media> = (0..6).map(|i| img(&format!("https://x/{i}.png"))).collect();
        let o = objects("hello", &medias);
        assert_eq!(o.len(), 5);
        assert_eq!(o[0]["text"], "hello");
        assert_eq!(o[1]["text"], "https://x/3.png\nhttps://x/4.png\nhttps://x/5.png");
        assert_eq!(o[2]["originalContentUrl"], "https://x/0.png");
        let pdf = Media::link("https://x/a.pdf", "application/pdf");
        let o = objects("", &[pdf, img("http://insecure/p.png")]);
        assert_eq!(o, vec![json!({"type": "text", "text": "https://x/a.pdf\nhttp://insecure/p.png"})]);
        let video = Media::link("https://x/v.mp4", "video/mp4");
        let o = objects("", std::slice::from_ref(&video));
        assert_eq!(o, vec![json!({"type": "text", "text": "https://x/v.mp4"})], "no preview: a link");
        let with_preview = Media { preview_url: Some("https://x/v.jpg".into()), ..video };
        let o = objects("", &[with_preview]);
        assert_eq!(
            o,
            vec![
                json!({"type": "video", "originalContentUrl": "https://x/v.mp4", "previewImageUrl": "https://x/v.jpg"})
            ]
        );
    }
}
