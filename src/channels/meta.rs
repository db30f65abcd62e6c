//! What Meta's platforms share: WhatsApp Cloud API, Messenger and Instagram Direct.
//!
//! One webhook format around them (`GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
//! to subscribe, `POST` bodies signed with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app
//! secret, raw body)>`), one Graph API error shape (`{"error": {"code": …}}`, throttling
//! reported as a 400 with a transient code) and one way to read a user's profile. The adapters
//! (`whatsapp`, `messenger`) keep their own payloads and send bodies; this module owns only what
//! would otherwise be copied between them.

use super::{HookRequest, Inbound, SendOutcome};
use crate::error::Error;
use crate::model::Account;
use axum::http::Method;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The Graph API version every Meta call uses.
pub const GRAPH_VERSION: &str = "v17.0";

/// Graph error codes Meta documents as throttling or temporary: worth a retry even on a 400.
const TRANSIENT_CODES: &[i64] = &[1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131016, 131056];

/// The `X-Hub-Signature-256` header value for `body`.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(app_secret, body))
}

/// Lowercase hex HMAC-SHA256 of `body` under `key` (Meta's and Viber's signatures).
pub fn hmac_hex(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The subscription handshake (GET: `hub.verify_token` must be the account's `verify_token`)
/// or the body's signature (POST: `X-Hub-Signature-256` with the account's `app_secret`).
pub fn verify(account: &Account, req: &HookRequest) -> Result<(), Error> {
    let eq = crate::auth::constant_time_eq;
    if req.method == Method::GET {
        let mode = req.query.get("hub.mode").map(String::as_str);
        let token = req.query.get("hub.verify_token").map_or("", String::as_str);
        let expected = super::verify_secret(account, "verify_token")?;
        if mode == Some("subscribe") && eq(token.as_bytes(), expected.as_bytes()) {
            return Ok(());
        }
        return Err(Error::Forbidden("hub.verify_token does not match".into()));
    }
    let given =
        req.header("x-hub-signature-256").ok_or_else(|| Error::Forbidden("missing X-Hub-Signature-256".into()))?;
    let expected = signature(super::verify_secret(account, "app_secret")?, &req.body);
    if eq(given.trim().to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Forbidden("X-Hub-Signature-256 does not match".into()))
    }
}

/// A verified GET is the handshake: its answer is the challenge. `None` for a POST.
pub fn challenge(req: &HookRequest) -> Result<Option<Inbound>, Error> {
    if req.method != Method::GET {
        return Ok(None);
    }
    let challenge = req.query.get("hub.challenge").ok_or_else(|| Error::bad_request("hub.challenge is missing"))?;
    Ok(Some(Inbound { challenge: Some(challenge.clone()), ..Inbound::default() }))
}

/// `v[key]` as a string, `""` when absent.
pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// A Meta `timestamp`: seconds (WhatsApp, as a string) or milliseconds (Messenger, a number).
pub fn timestamp(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let n = v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    // Milliseconds since 1970 pass 10^12 in 2001; seconds will not before the year 33658.
    let ms = if n > 1_000_000_000_000 { n } else { n.checked_mul(1000)? };
    chrono::DateTime::from_timestamp_millis(ms)
}

/// Sends one Graph API request: the JSON answer on success, else the outcome (Meta's
/// throttling codes retried even when they come as a 400).
pub async fn call(req: reqwest::RequestBuilder) -> Result<Value, SendOutcome> {
    let res = req.send().await.map_err(|e| super::outcome_for_error(&e))?;
    let status = res.status();
    let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = res.text().await.unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if let Some(o) = super::outcome_for_status(status, retry_after.as_deref(), &text) {
        let code = v["error"]["code"].as_i64().unwrap_or(0);
        if let SendOutcome::Failed { error } = &o
            && TRANSIENT_CODES.contains(&code)
        {
            return Err(SendOutcome::Retry { after: None, error: error.clone() });
        }
        return Err(o);
    }
    Ok(v)
}

/// A user's display name from the Graph API (`GET /{id}?fields=…`): `name`, else
/// `first_name last_name`, else the `username`. `None` when it cannot be had (no permission,
/// an outage): the contact then goes by its id, as before.
pub async fn profile_name(http: &reqwest::Client, base: &str, token: &str, id: &str, fields: &str) -> Option<String> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return None;
    }
    let url = format!("{base}/{GRAPH_VERSION}/{id}?fields={fields}");
    let req = http.get(url).bearer_auth(token).timeout(std::time::Duration::from_secs(5));
    let v = call(req).await.ok()?;
    let full = [str_of(&v, "first_name"), str_of(&v, "last_name")].into_iter().filter(|s| !s.is_empty());
    let full = full.collect::<Vec<_>>().join(" ");
    [str_of(&v, "name"), full.as_str(), str_of(&v, "username")]
        .into_iter()
        .find(|s| !s.trim().is_empty())
        .map(|s| s.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_seconds_or_milliseconds() {
        let s = timestamp(&Value::from("1749416383")).unwrap();
        let ms = timestamp(&Value::from(1_749_416_383_000_i64)).unwrap();
        assert_eq!(s, ms);
        assert!(timestamp(&Value::Null).is_none());
    }

    #[test]
    fn signature_is_prefixed_hex() {
        let s = signature("s", b"{}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
    }
}
