//! Twilio-compatible SMS/MMS.
//!
//! Inbound: `application/x-www-form-urlencoded` (From, To, Body, MessageSid, NumMedia,
//! MediaUrl<N>, MediaContentType<N>), signed with `X-Twilio-Signature` = base64
//! HMAC-SHA1(auth token, full URL + every POST parameter name and value sorted by name).
//! Status callbacks hit the same URL and carry `MessageStatus`. We answer with empty TwiML.
//! Outbound: `POST /2010-04-01/Accounts/{sid}/Messages.json`, form, basic auth, with
//! `StatusCallback` so delivery reports come back. Credentials: `account_sid`, `auth_token`.

use super::{HookReply, HookRequest, Inbound, InboundMessage, Outgoing, Provider, SendOutcome, StatusUpdate};
use crate::error::Error;
use crate::model::{Account, Address, AddressType, Media, MessageStatus, ProviderKind};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

#[derive(Debug)]
pub struct Twilio;

/// The `X-Twilio-Signature` for `url` and form `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn status(s: &str) -> Option<MessageStatus> {
    Some(match s {
        "accepted" | "queued" | "scheduled" | "sending" => MessageStatus::Queued,
        "sent" => MessageStatus::Sent,
        "delivered" | "read" => MessageStatus::Delivered,
        "failed" | "undelivered" | "canceled" => MessageStatus::Failed,
        _ => return None,
    })
}

#[async_trait]
impl Provider for Twilio {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Twilio
    }
    fn channel(&self) -> AddressType {
        AddressType::Tel
    }
    fn required_credentials(&self) -> &'static [&'static str] {
        &["account_sid", "auth_token"]
    }
    fn default_api_base(&self) -> &'static str {
        "https://api.twilio.com"
    }
    fn max_text_chars(&self) -> usize {
        1600
    }

    fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error> {
        let given =
            req.header("x-twilio-signature").ok_or_else(|| Error::Forbidden("missing X-Twilio-Signature".into()))?;
        let expected = signature(super::verify_secret(account, "auth_token")?, &req.url, &form(&req.body));
        if crate::auth::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(Error::Forbidden("X-Twilio-Signature does not match".into()))
        }
    }

    async fn parse(&self, _account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
        let p = form(&req.body);
        let sid = field(&p, "MessageSid").or_else(|| field(&p, "SmsSid")).unwrap_or("");
        if sid.is_empty() {
            return Err(Error::bad_request("MessageSid is missing"));
        }
        let mut inbound = Inbound::default();
        if let Some(s) = field(&p, "MessageStatus").filter(|s| *s != "received") {
            let st = status(s).ok_or_else(|| Error::bad_request(format!("unknown MessageStatus `{s}`")))?;
            let error = field(&p, "ErrorCode").filter(|e| !e.is_empty()).map(|e| format!("Twilio error {e}"));
            inbound.statuses.push(StatusUpdate { provider_message_id: sid.into(), status: st, error });
            return Ok(inbound);
        }
        let from = field(&p, "From").filter(|f| !f.is_empty()).ok_or_else(|| Error::bad_request("From is missing"))?;
        let n: usize = field(&p, "NumMedia").and_then(|n| n.parse().ok()).unwrap_or(0).min(10);
        let medias = (0..n)
            .filter_map(|i| {
                let url = field(&p, &format!("MediaUrl{i}"))?;
                let ct = field(&p, &format!("MediaContentType{i}")).unwrap_or("");
                Some(Media::link(url, ct))
            })
            .collect();
        inbound.messages.push(InboundMessage {
            provider_message_id: sid.into(),
            from: Address {
                kind: AddressType::Tel,
                target: from.into(),
                name: field(&p, "ProfileName").unwrap_or("").into(),
            },
            text: field(&p, "Body").unwrap_or("").into(),
            medias,
            thread: None,
            sent_at: None,
            files: Vec::new(),
        });
        Ok(inbound)
    }

    fn reply(&self) -> HookReply {
        HookReply {
            content_type: "text/xml",
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".into(),
        }
    }

    async fn send(&self, http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome {
        let (sid, token) = match (super::send_secret(account, "account_sid"), super::send_secret(account, "auth_token"))
        {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let url = format!("{}/2010-04-01/Accounts/{sid}/Messages.json", super::api_base(self, account));
        let mut params: Vec<(&str, &str)> = vec![("To", out.to), ("From", &account.address), ("Body", out.text)];
        for m in out.medias {
            params.push(("MediaUrl", &m.url));
        }
        if !out.status_callback.is_empty() {
            params.push(("StatusCallback", out.status_callback));
        }
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        let res = super::traced(http.post(url), out)
            .basic_auth(sid, Some(token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        let res = match res {
            Ok(r) => r,
            Err(e) => return super::outcome_for_error(&e),
        };
        let status = res.status();
        let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = res.text().await.unwrap_or_default();
        if let Some(o) = super::outcome_for_status(status, retry_after.as_deref(), &text) {
            return o;
        }
        match serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["sid"].as_str().map(str::to_string))
        {
            Some(id) => SendOutcome::Sent { provider_message_id: id },
            None => SendOutcome::Failed { error: "Twilio answered without a message sid".into() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from Twilio's "Validating Signatures from Twilio" documentation.
    #[test]
    fn signature_matches_twilio_docs_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }

    /// An account whose `auth_token` is missing or blank (old stored data) verifies nothing,
    /// not even a request signed with the empty key.
    #[test]
    fn a_missing_secret_never_verifies() {
        let body = "From=%2B14155550123&Body=hi";
        for creds in
            [serde_json::json!({}), serde_json::json!({"auth_token": ""}), serde_json::json!({"auth_token": " "})]
        {
            let account = crate::channels::test_support::account("tel", "twilio", creds);
            let mut req = crate::channels::test_support::req(body);
            req.url = "https://hub.example/v1.0/hooks/twilio/x".into();
            let sig = signature("", &req.url, &form(&req.body));
            req.headers.insert("x-twilio-signature", sig.parse().unwrap());
            let e = Twilio.verify(&account, &req).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::FORBIDDEN);
            assert!(e.to_string().contains("credentials.auth_token"), "{e}");
        }
    }
}
