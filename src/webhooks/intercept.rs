//! `message.creating`: the tenant's intercept webhooks see a message before it is stored and
//! allow, reject or modify it.
//!
//! Called by `conversations::post` right before the append. Without an intercept webhook for
//! the tenant this is one map lookup. Otherwise each intercept webhook (oldest first) gets the
//! draft as a signed event `{id, type: "message.creating", tenant_id, tm_create,
//! conversation_id, data: <message, seq 0>}` and has `webhooks.intercept_timeout_ms` to answer
//! `{"action":"allow"}`, `{"action":"reject","reason":".."}` or
//! `{"action":"modify","text":..,"medias":..}`; a later webhook sees the earlier one's changes.
//! A timeout, a non-2xx answer, an unreadable answer or an invalid modification is a failure,
//! and the webhook's `on_failure` decides.

use super::model::{Mode, OnFailure, Webhook};
use super::sign::{SendError, post_signed};
use crate::app::AppState;
use crate::broker::Event;
use crate::error::{Error, Result};
use crate::model::{Media, Message};
use crate::wire::EventKind;
use serde::Deserialize;
use std::time::Duration;
use uuid::Uuid;

/// The outcome for a message that may be stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Store it as it is.
    Allow,
    /// Store it with this text and these medias instead.
    Modify { text: String, medias: Vec<Media> },
}

impl Verdict {
    /// Applies a modification to the message being posted.
    pub fn apply(self, text: &mut String, medias: &mut Vec<Media>) {
        if let Verdict::Modify { text: t, medias: m } = self {
            *text = t;
            *medias = m;
        }
    }
}

/// What an intercept endpoint may answer.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
enum Answer {
    Allow,
    Reject {
        #[serde(default)]
        reason: String,
    },
    Modify {
        text: Option<String>,
        medias: Option<Vec<Media>>,
    },
}

/// Longest rejection reason passed on to the sender.
const MAX_REASON: usize = 500;

fn rejected(reason: &str) -> Error {
    let mut r = reason.trim();
    if r.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        r = &r[..end];
    }
    let message = if r.is_empty() { "rejected by webhook".to_string() } else { format!("rejected by webhook: {r}") };
    Error::Unprocessable { code: "rejected_by_webhook", message }
}

/// Asks the tenant's intercept webhooks about `draft`; see the module docs.
/// `Err(Unprocessable{code: "rejected_by_webhook"})` means: store nothing, tell the sender.
pub async fn intercept(state: &AppState, tenant: Uuid, draft: &Message) -> Result<Verdict> {
    let Some(hooks) = state.webhooks.intercepts(tenant) else { return Ok(Verdict::Allow) };
    let mut changed: Option<Message> = None;
    for hook in hooks.hooks.iter().filter(|w| w.mode == Mode::Intercept && w.wants(EventKind::MessageCreating)) {
        let current = changed.as_ref().unwrap_or(draft);
        match ask(state, hook, tenant, current).await {
            Ok(Answer::Allow) => {}
            Ok(Answer::Reject { reason }) => return Err(rejected(&reason)),
            Ok(Answer::Modify { text, medias }) => {
                let mut m = current.clone();
                if let Some(t) = text {
                    m.text = t;
                }
                if let Some(ms) = medias {
                    m.medias = ms;
                }
                match check(state, &m) {
                    Ok(()) => changed = Some(m),
                    Err(why) => fail(hook, &why)?,
                }
            }
            Err(why) => fail(hook, &why)?,
        }
    }
    Ok(match changed {
        Some(m) if m.text != draft.text || m.medias != draft.medias => {
            Verdict::Modify { text: m.text, medias: m.medias }
        }
        _ => Verdict::Allow,
    })
}

/// A failed intercept call: logged, then allowed or rejected per the webhook's `on_failure`.
fn fail(hook: &Webhook, why: &str) -> Result<()> {
    tracing::warn!(webhook = %hook.id, on_failure = ?hook.on_failure, error = %why, "intercept webhook failed");
    match hook.on_failure {
        OnFailure::Allow => Ok(()),
        OnFailure::Reject => Err(rejected(&format!("the intercept webhook failed ({why})"))),
    }
}

/// A modified message must still pass the post path's limits.
fn check(state: &AppState, m: &Message) -> std::result::Result<(), String> {
    let limits = &state.config.limits;
    if m.text.trim().is_empty() && m.medias.is_empty() {
        return Err("modify left the message without text and medias".into());
    }
    if m.text.len() > limits.max_text_bytes {
        return Err(format!("modified text is longer than {} bytes", limits.max_text_bytes));
    }
    if m.medias.len() > limits.max_medias {
        return Err(format!("modify gave more than {} medias", limits.max_medias));
    }
    let bad = |u: &str| !(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 2048;
    if m.medias.iter().any(|x| bad(&x.url) || x.content_type.len() > 255) {
        return Err("modify gave an invalid media".into());
    }
    Ok(())
}

/// One signed call and its parsed answer, within `webhooks.intercept_timeout_ms` overall.
async fn ask(state: &AppState, hook: &Webhook, tenant: Uuid, m: &Message) -> std::result::Result<Answer, String> {
    let limit = Duration::from_millis(state.config.webhooks.intercept_timeout_ms);
    let event = Event::new(EventKind::MessageCreating, tenant, Some(m.conversation_id), m);
    let body = serde_json::to_string(&event).map_err(|e| format!("draft not serializable: {e}"))?;
    let call = async {
        let res = post_signed(state, hook, event.id, body, limit).await.map_err(|e| match e {
            SendError::Refused(s) | SendError::Transport(s) => s,
        })?;
        let status = res.status();
        if !status.is_success() {
            return Err(format!("answered HTTP {}", status.as_u16()));
        }
        let bytes = read_capped(res, state.config.limits.max_body_bytes).await?;
        serde_json::from_slice::<Answer>(&bytes).map_err(|e| format!("unreadable answer: {e}"))
    };
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| Err(format!("timed out after {} ms", limit.as_millis())))
}

async fn read_capped(mut res: reqwest::Response, cap: usize) -> std::result::Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|_| "answer body not read".to_string())? {
        if buf.len() + chunk.len() > cap {
            return Err(format!("answer larger than {cap} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        assert!(matches!(serde_json::from_str::<Answer>(r#"{"action":"allow"}"#), Ok(Answer::Allow)));
        let r: Answer = serde_json::from_str(r#"{"action":"reject","reason":"spam"}"#).unwrap();
        assert!(matches!(r, Answer::Reject { reason } if reason == "spam"));
        let m: Answer = serde_json::from_str(r#"{"action":"modify","text":"hi"}"#).unwrap();
        assert!(matches!(m, Answer::Modify { text: Some(t), medias: None } if t == "hi"));
        assert!(serde_json::from_str::<Answer>(r#"{"action":"maybe"}"#).is_err());
        assert_eq!(rejected("").to_string(), "rejected by webhook");
        assert!(rejected(&"é".repeat(400)).to_string().len() < 600);
    }
}
