//! Outbound email over SMTP (`lettre`): one multipart text + HTML message per delivery.
//!
//! Threading: every message gets a stable `Message-ID` (`<message id@switchboard>`, so a retry
//! sends the same id and the outbox indexes it for replies), and when the recipient wrote to us
//! before, `In-Reply-To` / `References` point at its last mail (kept in the participant's
//! `data.email_thread` by the inbound hook) with the subject `Re: <conversation name>`.
//!
//! Outcomes map onto the outbox's retry policy: SMTP 4xx (transient) and connection, TLS or
//! timeout failures → retry; 5xx (permanent) and unusable settings → failed.

use super::text::{base_subject, escape_html};
use crate::channels::{Outgoing, SendContext, SendOutcome};
use crate::model::Account;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use uuid::Uuid;

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
    let t = list.iter().find(|p| p.id == ctx.participant_id).and_then(|p| p.data.get("email_thread"));
    let ids = |v: &serde_json::Value| v.as_str().map(str::to_string);
    Ok(Thread {
        conversation_name: c.map(|c| c.name).unwrap_or_default(),
        in_reply_to: t.and_then(|t| ids(&t["message_id"])),
        references: t.and_then(|t| t["references"].as_array()).map(|a| a.iter().filter_map(ids).collect()).unwrap_or_default(),
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

fn build(account: &Account, out: &Outgoing<'_>, t: &Thread, id: &str) -> Result<Message, String> {
    let from_addr = account.address.parse().map_err(|e| format!("account address is not an email address: {e}"))?;
    let from = Mailbox::new(Some(display_name(account).to_string()).filter(|n| *n != account.address), from_addr);
    let to: Mailbox = out.to.parse().map_err(|e| format!("`{}` is not an email address: {e}", out.to))?;
    let mut plain = out.text.to_string();
    let mut html = format!("<div style=\"white-space:pre-wrap\">{}</div>", escape_html(out.text));
    for m in out.medias {
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
    b.multipart(MultiPart::alternative_plain_html(plain, html)).map_err(|e| format!("cannot build the email: {e}"))
}

/// An SMTP client for the account's settings (`host`, `port`, `tls`, `username`, `password`).
fn transport(account: &Account, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = account.secret("host");
    let mode = match account.secret("tls") {
        "" => "starttls",
        m => m,
    };
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
    let user = account.secret("username");
    if !user.is_empty() {
        builder = builder.credentials(Credentials::new(user.to_string(), account.secret("password").to_string()));
    }
    Ok(builder.build())
}

/// Maps an SMTP failure onto the outbox's policy (see the module docs).
fn outcome(e: &lettre::transport::smtp::Error) -> SendOutcome {
    let error = format!("SMTP: {e}");
    if e.is_permanent() {
        SendOutcome::Failed { error }
    } else {
        SendOutcome::Retry { after: None, error }
    }
}

/// Sends one piece; `ctx` (from the outbox) supplies threading and the timeout.
pub async fn send(account: &Account, out: &Outgoing<'_>, ctx: Option<&SendContext<'_>>) -> SendOutcome {
    let mut key = out.key.split(':');
    let message = ctx.map(|c| c.message_id).or_else(|| key.next().and_then(|m| Uuid::parse_str(m).ok()));
    let piece = out.key.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let id = message_id(message.unwrap_or_else(Uuid::now_v7), piece);
    let (t, timeout) = match ctx {
        Some(c) => match thread(c).await {
            Ok(t) => (t, Duration::from_millis(c.state.config.channels.request_timeout_ms)),
            Err(e) => return SendOutcome::Retry { after: None, error: format!("thread lookup: {e}") },
        },
        None => (Thread::default(), DEFAULT_TIMEOUT),
    };
    let email = match build(account, out, &t, &id) {
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
