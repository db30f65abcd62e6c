//! Channels: SMS/MMS and social networks bridged into conversation rooms.
//!
//! This module owns the provider adapters (one file each: verify an inbound signature, parse
//! the provider's payload, send through its API), the inbound webhook route that matches a
//! peer to a room (one door for every provider, email included), and the outbound dispatch
//! through a retrying outbox. It does not own rooms
//! or history: inbound messages enter through `conversations::post` like every other message.

pub mod accounts;
pub mod dispatch;
pub mod email;
pub mod inbound;
pub mod inbound_media;
pub mod inbound_rehost;
pub mod inbound_room;
pub mod line;
pub mod media;
pub mod messenger;
pub mod meta;
pub mod outbox;
pub mod queue;
pub mod split;
pub mod telegram;
pub mod telnyx;
pub mod templates;
#[cfg(test)]
pub(crate) mod test_support;
pub mod twilio;
pub mod viber;
pub mod whatsapp;

use crate::error::Error;
use crate::model::{Account, Address, AddressType, Media, MessageStatus, ProviderKind};
use async_trait::async_trait;
use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// An inbound webhook request as the provider sent it.
#[derive(Debug, Clone)]
pub struct HookRequest {
    pub method: Method,
    /// The full public URL the provider called (scheme, host, path, query): Twilio signs it.
    pub url: String,
    pub headers: HeaderMap,
    pub query: HashMap<String, String>,
    pub body: Bytes,
}

impl HookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A message a peer sent us.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The provider's id for it: retries of the same id never create a second message.
    pub provider_message_id: String,
    pub from: Address,
    pub text: String,
    pub medias: Vec<Media>,
    /// Where it sits in a thread the provider keeps itself (email); `None` elsewhere.
    pub thread: Option<Thread>,
    /// When the peer sent it, as the provider reports it (`None`: now). The 24-hour
    /// customer-service window of WhatsApp, Messenger and Instagram counts from here.
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Files that came inside the webhook itself (email attachments): stored like uploads
    /// before the message is posted, and added to its medias.
    pub files: Vec<InboundFile>,
}

/// A file carried in a webhook body (an email attachment).
#[derive(Debug, Clone, PartialEq)]
pub struct InboundFile {
    /// The sender's file name, cleaned (`media::upload::clean_name`).
    pub name: Option<String>,
    pub bytes: bytes::Bytes,
}

/// What a threaded channel (email: Message-ID, In-Reply-To, References, Subject) adds to an
/// inbound message. With one, the message's own provider id is indexed after it is posted,
/// so a later message answering it finds its room.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thread {
    /// Provider message ids it answers, most specific first. The room of the first one we
    /// know (sent from a room, or received into one) wins over the sender's own room, as long
    /// as the sender can take part there.
    pub replies_to: Vec<String>,
    /// The name of a room this message opens (email: its subject); empty: the sender's name.
    pub subject: String,
    /// Kept on the sender's participant as `data[key]` for our replies (email's
    /// `email_thread`, which the outbox reads to thread the answer).
    pub participant_data: Option<(String, serde_json::Value)>,
}

/// A delivery report for something we sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub provider_message_id: String,
    pub status: MessageStatus,
    pub error: Option<String>,
}

/// A read receipt: the peer read what we sent, up to one message (Instagram names it) or up
/// to a time (Messenger's `watermark`: everything sent before it).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadReceipt {
    pub from: Address,
    pub provider_message_id: Option<String>,
    pub watermark: Option<chrono::DateTime<chrono::Utc>>,
}

/// What an inbound request carried.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Inbound {
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
    /// Read receipts, which become the peer's read marker in its room.
    pub reads: Vec<ReadReceipt>,
    /// A verification handshake to answer with this body (WhatsApp `hub.challenge`).
    pub challenge: Option<String>,
}

/// The HTTP answer a provider expects.
#[derive(Debug, Clone)]
pub struct HookReply {
    pub content_type: &'static str,
    pub body: String,
}

impl HookReply {
    pub fn ok() -> HookReply {
        HookReply { content_type: "text/plain", body: "OK".into() }
    }
}

/// One outbound message to one peer.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub text: &'a str,
    pub medias: &'a [Media],
    /// URL for delivery callbacks, where the provider takes one per message (Twilio).
    pub status_callback: &'a str,
    /// Stable across retries of the same piece of the same delivery
    /// (`<message id>:<participant id>:<piece>`): providers with idempotent sends use it.
    pub key: &'a str,
    /// `X-Request-Id` of the API request that posted the message ("" when none).
    pub request_id: &'a str,
    /// A Messenger/Instagram message tag (`HUMAN_AGENT`…) sending outside the 24-hour window.
    pub tag: Option<&'a str>,
    /// A WhatsApp template to send instead of the text (which is its rendered body).
    pub template: Option<&'a crate::model::TemplateSend>,
}

/// `builder` carrying the message's request id, so a provider-side log lines up with ours.
pub fn traced(builder: reqwest::RequestBuilder, out: &Outgoing<'_>) -> reqwest::RequestBuilder {
    if out.request_id.is_empty() { builder } else { builder.header(crate::logging::REQUEST_ID, out.request_id) }
}

/// What the outbox knows about a send beyond the wire payload. Providers that need the node's
/// state for a send (email threads: the conversation name, the recipient's last Message-ID)
/// read it from here; the state is passed per call, so providers stay stateless.
pub struct SendContext<'a> {
    pub state: &'a crate::app::AppState,
    pub account: &'a Account,
    pub conversation_id: uuid::Uuid,
    pub message_id: uuid::Uuid,
    pub participant_id: uuid::Uuid,
}

/// The result of one send attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    Sent {
        provider_message_id: String,
    },
    /// Transient (timeout, 5xx, 429): try again, after `after` if the provider said so.
    Retry {
        after: Option<Duration>,
        error: String,
    },
    /// Permanent (other 4xx, bad credentials): do not retry.
    Failed {
        error: String,
    },
}

/// A provider adapter. Stateless: account data and secrets come in with every call.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Which provider this is: `account.provider`.
    fn kind(&self) -> ProviderKind;
    /// Path segment of its webhooks and `account.provider`'s wire spelling: `twilio`, `line`…
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }
    /// The address type of peers on this provider.
    fn channel(&self) -> AddressType;
    /// Credential keys an account must have.
    fn required_credentials(&self) -> &'static [&'static str];
    /// Default API base URL (override per account with `api_base_url`).
    fn default_api_base(&self) -> &'static str;
    /// Longest text one outbound message may carry; longer text is split.
    fn max_text_chars(&self) -> usize;
    /// Checks the request's signature with the account's secrets. `Err` = 403, nothing stored.
    fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error>;
    /// Parses a verified request. `Err` = 400.
    async fn parse(&self, account: &Account, req: &HookRequest) -> Result<Inbound, Error>;
    /// The body the provider expects back on success.
    fn reply(&self) -> HookReply {
        HookReply::ok()
    }
    /// Sends one message (already split to `max_text_chars`).
    async fn send(&self, http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome;
    /// Opens an inbound media that the provider only names (its `media::MEDIA_REF`
    /// reference): `(content type, body)`, the body streamed as it arrives (never buffered
    /// whole: the reader enforces its size limit). Providers whose media URLs are public need
    /// none.
    async fn fetch_media(
        &self,
        _http: &reqwest::Client,
        _account: &Account,
        _reference: &str,
    ) -> Result<(String, crate::media::ByteStream), Error> {
        Err(Error::NotFound("media"))
    }
    /// The display name of peer `id`, for a new peer whose message came without one
    /// (Messenger and Instagram send only ids): asked once, when its room is opened.
    async fn profile_name(&self, _http: &reqwest::Client, _account: &Account, _id: &str) -> Option<String> {
        None
    }
    /// What the outbox calls: `send` with its context; providers needing none keep this.
    async fn send_in(&self, ctx: &SendContext<'_>, out: &Outgoing<'_>) -> SendOutcome {
        self.send(&ctx.state.http, ctx.account, out).await
    }
}

/// A secret an inbound signature is checked with. Missing or blank is a 403 like a bad
/// signature: a request can never verify against an empty key.
pub fn verify_secret<'a>(account: &'a Account, key: &str) -> Result<&'a str, Error> {
    account.secret(key).map_err(|e| Error::Forbidden(format!("cannot verify the signature: {e}")))
}

/// A secret a send needs; missing or blank fails the delivery for good (retrying cannot help).
pub fn send_secret<'a>(account: &'a Account, key: &str) -> Result<&'a str, SendOutcome> {
    account.secret(key).map_err(|e| SendOutcome::Failed { error: e.to_string() })
}

/// The base URL to call for `account`.
pub fn api_base<'a>(provider: &'a dyn Provider, account: &'a Account) -> &'a str {
    account
        .api_base_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .unwrap_or(provider.default_api_base())
        .trim_end_matches('/')
}

/// Maps an HTTP response status to a send outcome (shared by every provider).
pub fn outcome_for_status(status: reqwest::StatusCode, retry_after: Option<&str>, body: &str) -> Option<SendOutcome> {
    if status.is_success() {
        return None;
    }
    let error = format!("HTTP {}: {}", status.as_u16(), body.chars().take(300).collect::<String>());
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let after = retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        return Some(SendOutcome::Retry { after, error });
    }
    Some(SendOutcome::Failed { error })
}

/// A transport error (connect, timeout) is always worth a retry.
pub fn outcome_for_error(e: &reqwest::Error) -> SendOutcome {
    SendOutcome::Retry { after: None, error: format!("request failed: {e}") }
}

/// Every provider, by name.
#[derive(Clone)]
pub struct Registry {
    providers: Arc<HashMap<ProviderKind, Arc<dyn Provider>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.keys()).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        let all: Vec<Arc<dyn Provider>> = vec![
            Arc::new(twilio::Twilio),
            Arc::new(telnyx::Telnyx),
            Arc::new(line::Line),
            Arc::new(whatsapp::WhatsApp),
            Arc::new(telegram::Telegram),
            Arc::new(email::Smtp),
            Arc::new(messenger::Messenger),
            Arc::new(messenger::Instagram),
            Arc::new(viber::Viber),
        ];
        Registry { providers: Arc::new(all.into_iter().map(|p| (p.kind(), p)).collect()) }
    }
}

impl Registry {
    pub fn get(&self, kind: ProviderKind) -> Option<Arc<dyn Provider>> {
        self.providers.get(&kind).cloned()
    }

    /// The provider a webhook path segment names.
    pub fn by_name(&self, name: &str) -> Option<Arc<dyn Provider>> {
        ProviderKind::parse(name).and_then(|k| self.get(k))
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.providers.keys().map(|k| k.as_str()).collect();
        v.sort();
        v
    }
}
