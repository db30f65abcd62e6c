//! Signed requests to webhook endpoints, and the `Switchboard-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! with one `v1=` per secret that currently signs (two during a rotation's grace period).
//! The key is the whole secret string, `whsec_` prefix included, as UTF-8 bytes.

use super::guard;
use super::model::Webhook;
use crate::app::AppState;
use crate::model::now;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use uuid::Uuid;

pub const SIGNATURE_HEADER: &str = "Switchboard-Signature";
pub const EVENT_ID_HEADER: &str = "Switchboard-Event-Id";

fn hmac_hex(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The header value for `body` sent at unix time `t`, signed with each of `secrets`.
pub fn header(t: i64, body: &[u8], secrets: &[&str]) -> String {
    let mut v = format!("t={t}");
    for s in secrets {
        v.push_str(",v1=");
        v.push_str(&hmac_hex(s, t, body));
    }
    v
}

/// Receiver-side check (what the documented snippets do): some `v1=` matches `secret` and
/// `t` is within `tolerance_secs` of `now`. Comparison is constant-time.
pub fn verify(header_value: &str, body: &[u8], secret: &str, now: i64, tolerance_secs: i64) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header_value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    let expected = hmac_hex(secret, t, body);
    sigs.iter().any(|s| crate::auth::constant_time_eq(s.as_bytes(), expected.as_bytes()))
}

/// Why a request got no HTTP answer.
pub(super) enum SendError {
    /// The SSRF guard refused the target: not worth retrying.
    Refused(String),
    /// Timeout, DNS or connection failure: worth retrying.
    Transport(String),
}

/// POSTs `body` to `hook` with the signature and event id headers.
pub(super) async fn post_signed(
    state: &AppState,
    hook: &Webhook,
    event_id: Uuid,
    body: String,
    timeout: Duration,
) -> Result<reqwest::Response, SendError> {
    let wh = &state.webhooks;
    let url = guard::parse(&hook.url).map_err(|e| SendError::Refused(e.message()))?;
    guard::check_literal(&url, wh.allow_private).map_err(|e| SendError::Refused(e.message()))?;
    let at = now();
    let signature = header(at.timestamp(), body.as_bytes(), &hook.signing_secrets(at));
    // The request that caused the event, if any: from the envelope, or (intercept) this task.
    #[derive(serde::Deserialize)]
    struct Caused {
        request_id: Option<String>,
    }
    let request_id = serde_json::from_str::<Caused>(&body)
        .ok()
        .and_then(|c| c.request_id)
        .or_else(crate::logging::current_request_id)
        .unwrap_or_default();
    wh.http
        .post(url)
        .header(crate::logging::REQUEST_ID, request_id)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_ID_HEADER, event_id.to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| SendError::Transport(describe(&e, timeout)))
}

/// A transport error without the URL (it may carry a customer's token in its query).
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    let mut msg = if e.is_connect() { "connection failed".to_string() } else { "request failed".to_string() };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_rotation() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test",b"1700000000.{}",hashlib.sha256).hexdigest())'
        let h = header(1_700_000_000, b"{}", &["whsec_test"]);
        assert_eq!(h, "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91");
        assert!(verify(&h, b"{}", "whsec_test", 1_700_000_100, 300));
        assert!(!verify(&h, b"{ }", "whsec_test", 1_700_000_100, 300), "body tampered");
        assert!(!verify(&h, b"{}", "whsec_test", 1_700_001_000, 300), "too old");
        let two = header(5, b"x", &["new", "old"]);
        assert!(verify(&two, b"x", "new", 5, 1) && verify(&two, b"x", "old", 5, 1));
        assert!(!verify(&two, b"x", "other", 5, 1));
    }
}
