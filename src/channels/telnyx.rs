//! Telnyx-compatible SMS/MMS (Messaging API v2).
//!
//! Inbound: JSON events `{data: {event_type, id, occurred_at, payload}, meta}`, signed with
//! Ed25519: `telnyx-signature-ed25519` = base64 signature over `"{telnyx-timestamp}|{raw body}"`,
//! checked against the account's public key. A timestamp more than five minutes away from our
//! clock is refused, so a captured request cannot be replayed later.
//! `message.received` becomes a message (MMS media URLs are Telnyx-hosted and public for a
//! while). Telnyx posts one webhook per messaging profile, which may hold several numbers: a
//! message to a number other than the account's address is skipped, else our reply would go
//! out from the wrong number. `message.sent` / `message.finalized` carry `payload.to[0].status` and update the
//! delivery they name by `payload.id`. Other events are acknowledged and dropped.
//! Outbound: `POST /v2/messages`, bearer API key, JSON with `webhook_url` so delivery events
//! come back to this account's hook. Credentials: `api_key`, `public_key` (base64).

use super::{HookRequest, Inbound, InboundMessage, Outgoing, Provider, SendOutcome, StatusUpdate};
use crate::error::Error;
use crate::model::{Account, Address, AddressType, Media, MessageStatus, ProviderKind};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct Telnyx;

/// How far a webhook's timestamp may be from our clock, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// The bytes Telnyx signs: `"{timestamp}|{body}"`.
pub fn signed_payload(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(timestamp.len() + 1 + body.len());
    v.extend_from_slice(timestamp.as_bytes());
    v.push(b'|');
    v.extend_from_slice(body);
    v
}

/// Checks `signature_b64` over `timestamp|body` with `public_key_b64`, at time `now` (seconds).
pub fn check(
    public_key_b64: &str,
    signature_b64: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| "telnyx-timestamp is not a number")?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err("telnyx-timestamp is outside the tolerance");
    }
    let key: [u8; 32] = STANDARD
        .decode(public_key_b64.trim())
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or("public_key is not a base64 Ed25519 key")?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| "public_key is not a valid Ed25519 key")?;
    let sig = STANDARD.decode(signature_b64.trim()).map_err(|_| "signature is not base64")?;
    let sig = Signature::from_slice(&sig).map_err(|_| "signature has the wrong length")?;
    key.verify_strict(&signed_payload(timestamp.trim(), body), &sig).map_err(|_| "signature does not match")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn status(s: &str) -> Option<MessageStatus> {
    Some(match s {
        "queued" | "sending" => MessageStatus::Queued,
        // The carrier never confirmed: it left us, which is all we know.
        "sent" | "delivery_unconfirmed" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "sending_failed" | "delivery_failed" | "expired" => MessageStatus::Failed,
        _ => return None,
    })
}

/// Whether a message's `to` list names `address` (digits compared, so `+1 844-555` formatting
/// of the account address does not matter). An empty list cannot say; it counts as ours.
fn to_us(to: &Value, address: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let ours = digits(address);
    let list = to.as_array().map(Vec::as_slice).unwrap_or_default();
    list.is_empty() || list.iter().any(|t| digits(str_of(t, "phone_number")) == ours)
}

/// The first error of a payload or an API answer, as `code: title (detail)`.
fn first_error(errors: &Value) -> Option<String> {
    let e = errors.as_array()?.first()?;
    let code = e["code"].as_str().map(str::to_string).or_else(|| e["code"].as_i64().map(|c| c.to_string()));
    let mut s = format!("Telnyx error {}: {}", code.unwrap_or_default(), str_of(e, "title"));
    if let Some(d) = e["detail"].as_str().filter(|d| !d.is_empty()) {
        s.push_str(&format!(" ({d})"));
    }
    Some(s)
}

#[async_trait]
impl Provider for Telnyx {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Telnyx
    }
    fn channel(&self) -> AddressType {
        AddressType::Tel
    }
    fn required_credentials(&self) -> &'static [&'static str] {
        &["api_key", "public_key"]
    }
    fn default_api_base(&self) -> &'static str {
        "https://api.telnyx.com"
    }
    fn max_text_chars(&self) -> usize {
        1600
    }

    fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error> {
        let sig = req
            .header("telnyx-signature-ed25519")
            .ok_or_else(|| Error::Forbidden("missing telnyx-signature-ed25519".into()))?;
        let ts = req.header("telnyx-timestamp").ok_or_else(|| Error::Forbidden("missing telnyx-timestamp".into()))?;
        let now = chrono::Utc::now().timestamp();
        check(super::verify_secret(account, "public_key")?, sig, ts, &req.body, now)
            .map_err(|e| Error::Forbidden(e.into()))
    }

    async fn parse(&self, account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
        let v: Value = serde_json::from_slice(&req.body)
            .map_err(|e| Error::bad_request(format!("invalid Telnyx webhook JSON: {e}")))?;
        let data = &v["data"];
        let p = &data["payload"];
        let id = str_of(p, "id");
        let mut inbound = Inbound::default();
        match str_of(data, "event_type") {
            "message.received" => {
                let from = str_of(&p["from"], "phone_number");
                if id.is_empty() || from.is_empty() {
                    return Err(Error::bad_request("payload.id or payload.from.phone_number is missing"));
                }
                if !to_us(&p["to"], &account.address) {
                    return Ok(inbound);
                }
                let medias: Vec<Media> = p["media"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter(|m| !str_of(m, "url").is_empty())
                    .take(10)
                    .map(|m| Media::link(str_of(m, "url"), str_of(m, "content_type")))
                    .collect();
                let mut text = str_of(p, "text").to_string();
                if text.trim().is_empty() && medias.is_empty() {
                    text = "[empty message]".into();
                }
                inbound.messages.push(InboundMessage {
                    provider_message_id: id.into(),
                    from: Address { kind: AddressType::Tel, target: from.into(), name: String::new() },
                    text,
                    medias,
                    thread: None,
                    sent_at: None,
                    files: Vec::new(),
                });
            }
            "message.sent" | "message.finalized" => {
                let to = &p["to"][0];
                if let (Some(st), false) = (status(str_of(to, "status")), id.is_empty()) {
                    let error = if st == MessageStatus::Failed { first_error(&p["errors"]) } else { None };
                    inbound.statuses.push(StatusUpdate { provider_message_id: id.into(), status: st, error });
                }
            }
            "" => return Err(Error::bad_request("data.event_type is missing")),
            _ => {}
        }
        Ok(inbound)
    }

    async fn send(&self, http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome {
        let url = format!("{}/v2/messages", super::api_base(self, account));
        let mut body = json!({"from": account.address, "to": out.to, "text": out.text});
        if !out.medias.is_empty() {
            body["media_urls"] = json!(out.medias.iter().map(|m| m.url.as_str()).collect::<Vec<_>>());
        }
        if !out.status_callback.is_empty() {
            body["webhook_url"] = json!(out.status_callback);
        }
        let key = match super::send_secret(account, "api_key") {
            Ok(k) => k,
            Err(e) => return e,
        };
        let res = match super::traced(http.post(url), out).bearer_auth(key).json(&body).send().await {
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
        match v["data"]["id"].as_str() {
            Some(id) => SendOutcome::Sent { provider_message_id: id.into() },
            None => SendOutcome::Failed {
                error: first_error(&v["errors"]).unwrap_or_else(|| "Telnyx answered without a message id".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{self, req};
    use ed25519_dalek::{Signer, SigningKey};

    fn keys() -> (SigningKey, String) {
        let sk = SigningKey::from_bytes(&[7u8; 32]);
        let pk = STANDARD.encode(sk.verifying_key().to_bytes());
        (sk, pk)
    }

    #[test]
    fn ed25519_over_timestamp_and_body_within_tolerance() {
        let (sk, pk) = keys();
        let body = br#"{"data":{}}"#;
        let sig = STANDARD.encode(sk.sign(&signed_payload("1700000000", body)).to_bytes());
        assert_eq!(check(&pk, &sig, "1700000000", body, 1_700_000_010), Ok(()));
        assert!(check(&pk, &sig, "1700000000", b"{}", 1_700_000_010).is_err(), "other body");
        assert!(check(&pk, &sig, "1700000001", body, 1_700_000_010).is_err(), "other timestamp");
        assert_eq!(
            check(&pk, &sig, "1700000000", body, 1_700_000_301),
            Err("telnyx-timestamp is outside the tolerance")
        );
        let (_, other) = (0, STANDARD.encode(SigningKey::from_bytes(&[8u8; 32]).verifying_key().to_bytes()));
        assert!(check(&other, &sig, "1700000000", body, 1_700_000_000).is_err(), "other key");
        assert!(check("not base64!", &sig, "1700000000", body, 1_700_000_000).is_err());
        assert!(check(&pk, "AAAA", "1700000000", body, 1_700_000_000).is_err());
        assert!(check(&pk, &sig, "soon", body, 1_700_000_000).is_err());
    }

    async fn parse(v: Value) -> Inbound {
        let mut account = test_support::account("tel", "telnyx", json!({}));
        account.address = "+1 312 555 0002".into();
        Telnyx.parse(&account, &req(&v.to_string())).await.unwrap()
    }

    #[tokio::test]
    async fn parses_received_and_delivery_events() {
        let i = parse(
            json!({"data": {"event_type": "message.received", "id": "e1", "payload": {"id": "m1", "direction": "inbound",
            "from": {"phone_number": "+13125550001"}, "to": [{"phone_number": "+13125550002"}], "text": "",
            "media": [{"url": "https://media.telnyx.com/a.jpg", "content_type": "image/jpeg"}], "type": "MMS"}}}),
        )
        .await;
        let m = &i.messages[0];
        assert_eq!((m.provider_message_id.as_str(), m.from.target.as_str(), m.medias.len()), ("m1", "+13125550001", 1));
        let i = parse(json!({"data": {"event_type": "message.finalized", "id": "e2", "payload": {"id": "m2",
            "to": [{"phone_number": "+1", "status": "delivery_failed"}], "errors": [{"code": "40300", "title": "Blocked as spam"}]}}})).await;
        assert_eq!(i.statuses[0].status, MessageStatus::Failed);
        assert_eq!(i.statuses[0].error.as_deref(), Some("Telnyx error 40300: Blocked as spam"));
        assert!(parse(json!({"data": {"event_type": "call.initiated", "payload": {}}})).await.messages.is_empty());
        let elsewhere = json!({"data": {"event_type": "message.received", "id": "e3", "payload": {"id": "m3",
            "from": {"phone_number": "+13125550001"}, "to": [{"phone_number": "+13125550009"}], "text": "hi"}}});
        assert!(parse(elsewhere).await.messages.is_empty(), "another number of the messaging profile");
    }
}
