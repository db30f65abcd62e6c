//! Inbound email (an inbound-parse POST) as the shared inbound path sees it.
//!
//! Email enters through the same door as every provider (`channels::inbound`: verify, parse,
//! receive, resolve the room, `conversations::post`); this file holds what is email's own:
//! 1. the account's `inbound_secret` must be presented (`?secret=`, `X-Inbound-Secret`, or the
//!    password of HTTP Basic auth), compared in constant time: else 403 and nothing stored;
//! 2. the parsed email becomes an `InboundMessage` with a [`Thread`]: the Message-IDs it
//!    answers (`In-Reply-To`, then `References`: the shared path tries their rooms before the
//!    `(account, sender)` binding), its subject (the name of a room it opens) and the
//!    sender's thread for our replies (`participant.data.email_thread`). Its Message-ID is
//!    the idempotency key (a re-posted webhook is one message) and is indexed once posted.
//!
//! `POST /v1.0/hooks/email/{account_id}` (and `/hooks/smtp/…`, the account's own inbound URL)
//! is `channels::inbound::email_hook`: the shared handler for provider `smtp`.

use super::parse::Email;
use super::text::base_subject;
use crate::auth::constant_time_eq;
use crate::channels::{HookRequest, InboundMessage, Thread};
use crate::model::Account;
use base64::Engine;

/// Most References kept per thread (oldest dropped, the root kept first).
const MAX_REFERENCES: usize = 20;

/// Where our replies read the sender's thread (`participant.data`).
pub const THREAD_KEY: &str = "email_thread";

/// The secret the caller presented, if any.
fn presented(req: &HookRequest) -> Option<String> {
    if let Some(v) = req.query.get("secret") {
        return Some(v.clone());
    }
    if let Some(v) = req.header("x-inbound-secret") {
        return Some(v.to_string());
    }
    let basic = req.header("authorization")?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(basic.trim()).ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    pair.split_once(':').map(|(_, password)| password.to_string())
}

/// Whether the request presents the account's `inbound_secret` (never when none is set).
pub fn verified(account: &Account, req: &HookRequest) -> bool {
    let Ok(expected) = account.secret("inbound_secret") else { return false };
    let given = presented(req).unwrap_or_default();
    constant_time_eq(given.as_bytes(), expected.as_bytes())
}

/// One email as the shared inbound path takes it (see the module docs).
pub fn message(email: Email) -> InboundMessage {
    let mut refs = email.references;
    if refs.len() > MAX_REFERENCES {
        refs.drain(1..refs.len() + 1 - MAX_REFERENCES);
    }
    let thread = serde_json::json!({"message_id": email.message_id, "references": refs, "subject": email.subject});
    InboundMessage {
        from: email.from,
        text: email.text,
        medias: Vec::new(),
        thread: Some(Thread {
            replies_to: email.replies_to,
            // Replies then read `Re: <subject>`.
            subject: base_subject(&email.subject).chars().take(200).collect(),
            participant_data: Some((THREAD_KEY.into(), thread)),
        }),
        provider_message_id: email.message_id,
        sent_at: None,
        files: email.files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::{req, req_with};
    use axum::http::Method;

    #[test]
    fn secret_from_query_header_or_basic_auth() {
        let mut r = req_with(Method::POST, &[("a", "1"), ("secret", "s x")], "");
        assert_eq!(presented(&r).as_deref(), Some("s x"));
        r = req("");
        assert_eq!(presented(&r), None);
        r.headers.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(presented(&r).as_deref(), Some("pass"));
        r.headers.insert("x-inbound-secret", "hdr".parse().unwrap());
        assert_eq!(presented(&r).as_deref(), Some("hdr"));
    }

    #[test]
    fn an_email_carries_its_thread() {
        let from = crate::model::Address {
            kind: crate::model::AddressType::Email,
            target: "a@x.org".into(),
            name: String::new(),
        };
        let references: Vec<String> = (0..30).map(|i| format!("<r{i}@x>")).collect();
        let email = Email {
            from,
            subject: "Re: Fwd: Order 42".into(),
            text: "hi".into(),
            message_id: "<r29@x>".into(),
            replies_to: vec!["<r28@x>".into()],
            references,
            files: Vec::new(),
        };
        let m = message(email);
        assert_eq!(m.provider_message_id, "<r29@x>");
        let t = m.thread.unwrap();
        assert_eq!((t.replies_to, t.subject.as_str()), (vec!["<r28@x>".to_string()], "Order 42"));
        let (key, data) = t.participant_data.unwrap();
        assert_eq!(key, THREAD_KEY);
        let refs = data["references"].as_array().unwrap();
        assert_eq!(
            (refs.len(), &refs[0], &refs[1], &refs[19]),
            (20, &"<r0@x>".into(), &"<r11@x>".into(), &"<r29@x>".into())
        );
        assert_eq!(data["subject"], "Re: Fwd: Order 42");
    }
}
