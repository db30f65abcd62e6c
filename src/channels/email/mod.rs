//! Email: accounts of type `email` (provider `smtp`) send over SMTP and receive through an
//! inbound-parse webhook (SendGrid Inbound Parse, Mailgun routes and alike).
//!
//! Credentials (write-only like every account's): `host`, `port`, `tls` (`starttls` — the
//! default —, `tls` for implicit TLS, or `none`), `username` and `password` (optional: no
//! AUTH without a username), and `inbound_secret`, which the inbound hook requires. The
//! account's `address` is the From address, its `name` the From display name.
//!
//! Outbound rides the common outbox (retries, delivery statuses) as a [`Provider`]: one
//! multipart text + HTML message per delivery, sent with `lettre`; stored medias go along as
//! real attachments up to `media.email_attachment_max_bytes`, the rest as links ([`files`]). Every message gets a stable
//! `Message-ID` (`<message id@switchboard>`: a retry sends the same id, and the outbox indexes
//! it so replies find the room); when the recipient wrote to us before, `In-Reply-To` /
//! `References` point at its last mail (kept in the participant's `data.email_thread` by the
//! inbound hook) and the subject is `Re: <conversation name>`. SMTP 4xx (transient) and
//! connection, TLS or timeout failures are retried; 5xx (permanent) and unusable settings fail.
//!
//! Inbound takes the one door every provider takes (`channels::inbound`): `verify` checks the
//! account's `inbound_secret`, `parse` reads the inbound-parse POST into a message whose
//! [`Thread`](super::Thread) (In-Reply-To / References, subject, the participant's
//! `email_thread`) lets the shared path pick the room, name a new one and thread our replies.

pub mod files;
pub mod hook;
pub mod parse;
pub mod text;

use super::{HookRequest, Inbound, Outgoing, Provider, SendContext, SendOutcome};
use crate::error::Error;
use crate::model::{Account, AddressType, ProviderKind};
use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use text::{base_subject, escape_html};
use uuid::Uuid;

#[derive(Debug)]
pub struct Smtp;

#[async_trait]
impl Provider for Smtp {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Smtp
    }
    fn channel(&self) -> AddressType {
        AddressType::Email
    }
    fn required_credentials(&self) -> &'static [&'static str] {
        &["host", "inbound_secret"]
    }
    fn default_api_base(&self) -> &'static str {
        ""
    }
    /// Far above `limits.max_text_bytes`: an email is never split.
    fn max_text_chars(&self) -> usize {
        1_000_000
    }

    /// The account's `inbound_secret` must be presented (see [`hook::verified`]).
    fn verify(&self, account: &Account, req: &HookRequest) -> Result<(), Error> {
        if hook::verified(account, req) {
            Ok(())
        } else {
            Err(Error::Forbidden("inbound_secret missing or wrong".into()))
        }
    }

    /// One inbound-parse POST: one email, with its thread (see [`hook::message`]).
    async fn parse(&self, _account: &Account, req: &HookRequest) -> Result<Inbound, Error> {
        let email = parse::parse(req.header("content-type").unwrap_or(""), req.body.clone()).await?;
        Ok(Inbound { messages: vec![hook::message(email)], ..Inbound::default() })
    }

    /// Without the outbox's context: no threading, default timeout.
    async fn send(&self, _http: &reqwest::Client, account: &Account, out: &Outgoing<'_>) -> SendOutcome {
        send(account, out, None).await
    }

    async fn send_in(&self, ctx: &SendContext<'_>, out: &Outgoing<'_>) -> SendOutcome {
        send(ctx.account, out, Some(ctx)).await
    }
}

/// The SMTP dialogue may take at most this long when the outbox gave no context.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where this message sits in the recipient's thread.
#[derive(Debug, Default)]
struct Thread {
    conversation_name: String,
    in_reply_to: Option<String>,
    references: Vec<String>,
}

/// The stable `Message-ID` of one piece of one message.
pub fn message_id(message: Uuid, piece: usize) -> String {
    if piece == 0 { format!("<{message}@switchboard>") } else { format!("<{message}.{piece}@switchboard>") }
}

/// The conversation name and the recipient's thread; `Err` when the store cannot be read.
async fn thread(ctx: &SendContext<'_>) -> crate::error::Result<Thread> {
    let state = ctx.state;
    let c = state.store.get_conversation(ctx.account.tenant_id, ctx.conversation_id).await?;
    let list = state.store.list_participants(ctx.conversation_id).await?;
    let t = list.iter().find(|p| p.id == ctx.participant_id).and_then(|p| p.data.get(hook::THREAD_KEY));
    let ids = |v: &serde_json::Value| v.as_str().map(str::to_string);
    Ok(Thread {
        conversation_name: c.map(|c| c.name).unwrap_or_default(),
        in_reply_to: t.and_then(|t| ids(&t["message_id"])),
        references: t
            .and_then(|t| t["references"].as_array())
            .map(|a| a.iter().filter_map(ids).collect())
            .unwrap_or_default(),
    })
}

fn subject(account: &Account, t: &Thread) -> String {
    let name = base_subject(&t.conversation_name);
    let name = if name.is_empty() { format!("Message from {}", display_name(account)) } else { name.to_string() };
    if t.in_reply_to.is_some() { format!("Re: {name}") } else { name }
}

fn display_name(account: &Account) -> &str {
    if account.name.trim().is_empty() { &account.address } else { account.name.trim() }
}

fn build(
    account: &Account,
    out: &Outgoing<'_>,
    t: &Thread,
    id: &str,
    (attached, links): (Vec<files::Attachment>, Vec<&crate::model::Media>),
) -> Result<Message, String> {
    let from_addr = account.address.parse().map_err(|e| format!("account address is not an email address: {e}"))?;
    let from = Mailbox::new(Some(display_name(account).to_string()).filter(|n| *n != account.address), from_addr);
    let to: Mailbox = out.to.parse().map_err(|e| format!("`{}` is not an email address: {e}", out.to))?;
    let mut plain = out.text.to_string();
    let mut html = format!("<div style=\"white-space:pre-wrap\">{}</div>", escape_html(out.text));
    for m in links {
        plain.push_str(&format!("\n\n{}", m.url));
        html.push_str(&format!("<p><a href=\"{0}\">{0}</a></p>", escape_html(&m.url)));
    }
    let mut b = Message::builder().from(from).to(to).subject(subject(account, t)).message_id(Some(id.to_string()));
    if let Some(r) = &t.in_reply_to {
        b = b.in_reply_to(r.clone());
    }
    if !t.references.is_empty() {
        b = b.references(t.references.join(" "));
    }
    let body = MultiPart::alternative_plain_html(plain, html);
    if attached.is_empty() {
        return b.multipart(body).map_err(|e| format!("cannot build the email: {e}"));
    }
    let mut mixed = MultiPart::mixed().multipart(body);
    for a in attached {
        let ct = ContentType::parse(&a.content_type)
            .or_else(|_| ContentType::parse("application/octet-stream"))
            .map_err(|e| format!("attachment type: {e}"))?;
        mixed = mixed.singlepart(Attachment::new(a.name).body(a.bytes, ct));
    }
    b.multipart(mixed).map_err(|e| format!("cannot build the email: {e}"))
}

/// An SMTP client for the account's settings (`host`, `port`, `tls`, `username`, `password`).
fn transport(account: &Account, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = account.secret("host").map_err(|e| e.to_string())?;
    let mode = account.secret("tls").unwrap_or("starttls");
    let builder = match mode {
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)),
        other => return Err(format!("credentials.tls `{other}` must be starttls, tls or none")),
    }
    .map_err(|e| format!("SMTP settings: {e}"))?;
    let port = match account.credentials.get("port") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|p| u16::try_from(p).ok())
                .ok_or("credentials.port must be a port number")?,
        ),
    };
    let mut builder = builder.timeout(Some(timeout));
    if let Some(p) = port {
        builder = builder.port(p);
    }
    if let Some((_, domain)) = account.address.rsplit_once('@') {
        builder = builder.hello_name(ClientId::Domain(domain.to_string()));
    }
    if let Ok(user) = account.secret("username") {
        let password = account.secret("password").map_err(|e| e.to_string())?;
        builder = builder.credentials(Credentials::new(user.to_string(), password.to_string()));
    }
    Ok(builder.build())
}

/// Maps an SMTP failure onto the outbox's policy (see the module docs).
fn outcome(e: &lettre::transport::smtp::Error) -> SendOutcome {
    let error = format!("SMTP: {e}");
    if e.is_permanent() { SendOutcome::Failed { error } } else { SendOutcome::Retry { after: None, error } }
}

/// Sends one piece; `ctx` (from the outbox) supplies threading and the timeout.
async fn send(account: &Account, out: &Outgoing<'_>, ctx: Option<&SendContext<'_>>) -> SendOutcome {
    let mut key = out.key.split(':');
    let message = ctx.map(|c| c.message_id).or_else(|| key.next().and_then(|m| Uuid::parse_str(m).ok()));
    let piece = out.key.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let id = message_id(message.unwrap_or_else(Uuid::now_v7), piece);
    let (t, timeout) = match ctx {
        Some(c) => match thread(c).await {
            Ok(t) => (t, Duration::from_millis(c.state.config.channels.request_timeout_ms)),
            Err(e) => return SendOutcome::Retry { after: None, error: format!("thread lookup: {}", e.message()) },
        },
        None => (Thread::default(), DEFAULT_TIMEOUT),
    };
    let parts = files::split(ctx.map(|c| c.state), out.medias).await;
    let email = match build(account, out, &t, &id, parts) {
        Ok(m) => m,
        Err(error) => return SendOutcome::Failed { error },
    };
    let smtp = match transport(account, timeout) {
        Ok(s) => s,
        Err(error) => return SendOutcome::Failed { error },
    };
    match smtp.send(email).await {
        Ok(_) => SendOutcome::Sent { provider_message_id: id },
        Err(e) => outcome(&e),
    }
}
