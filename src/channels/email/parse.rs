//! The inbound-parse POST body as one email.
//!
//! Inbound mail arrives the way SendGrid Inbound Parse and Mailgun routes post it:
//! `multipart/form-data` (or, from Mailgun without attachments, `x-www-form-urlencoded`) with
//! the sender, subject, text/HTML bodies, the threading headers (SendGrid: a raw `headers`
//! block; Mailgun: `Message-Id` / `In-Reply-To` / `References` fields or `message-headers`
//! JSON) and attachments as file parts. Attachments are handed on as [`File`]s (at most
//! [`MAX_FILES`]); the inbound path stores them like uploads (`channels::inbound`), this file
//! only reads them out of the form.

use super::text::{header_block, html_to_text, message_ids, parse_mailbox, trim_quoted};
use crate::error::{Error, Result};
use crate::model::{Address, AddressType};
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// One inbound email, reduced to what a room needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub from: Address,
    pub subject: String,
    /// The new text of the message (quoted reply trimmed), attachments listed.
    pub text: String,
    /// Its Message-ID (a content hash when the sender gave none).
    pub message_id: String,
    /// Message-IDs it answers, most specific first: `In-Reply-To`, then `References` newest first.
    pub replies_to: Vec<String>,
    /// The sender's `References` chain followed by its own Message-ID, for our replies.
    pub references: Vec<String>,
    /// Its attachments (file parts), in order.
    pub files: Vec<crate::channels::InboundFile>,
}

/// Most attachments taken from one email; further ones are only named in the text.
pub const MAX_FILES: usize = 10;

/// A form field: name, file name (attachments), value. The sender's content type of a file
/// is not kept: storage sniffs the type from the bytes.
struct Part {
    name: String,
    file: Option<String>,
    value: Bytes,
}

async fn parts(content_type: &str, body: Bytes) -> Result<Vec<Part>> {
    let ct = content_type.to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        let pairs = form_urlencoded::parse(&body).into_owned();
        return Ok(pairs.map(|(name, v)| Part { name, file: None, value: Bytes::from(v) }).collect());
    }
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| Error::bad_request("expected multipart/form-data (or x-www-form-urlencoded) with a boundary"))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    let bad = |e: multer::Error| Error::bad_request(format!("malformed multipart body: {e}"));
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let file = field.file_name().map(str::to_string);
        let value = field.bytes().await.map_err(bad)?;
        out.push(Part { name, file, value });
    }
    Ok(out)
}

/// The first text field among `names` (case-insensitive), if any and non-empty.
fn field<'a>(parts: &'a [Part], names: &[&str]) -> Option<std::borrow::Cow<'a, str>> {
    names.iter().find_map(|n| {
        parts
            .iter()
            .find(|p| p.file.is_none() && p.name.eq_ignore_ascii_case(n))
            .map(|p| String::from_utf8_lossy(&p.value))
            .filter(|v| !v.trim().is_empty())
    })
}

/// Every header we can find, from the raw block and/or Mailgun's JSON list.
fn headers(parts: &[Part]) -> Vec<(String, String)> {
    let mut h = field(parts, &["headers"]).map(|raw| header_block(&raw)).unwrap_or_default();
    if let Some(json) = field(parts, &["message-headers"])
        && let Ok(list) = serde_json::from_str::<Vec<(String, String)>>(&json)
    {
        h.extend(list);
    }
    for name in ["Message-Id", "In-Reply-To", "References"] {
        if let Some(v) = field(parts, &[name]) {
            h.push((name.to_string(), v.into_owned()));
        }
    }
    h
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Parses the POST body (`content_type` is the request's Content-Type header).
pub async fn parse(content_type: &str, body: Bytes) -> Result<Email> {
    let digest = Sha256::digest(&body);
    let parts = parts(content_type, body).await?;
    let h = headers(&parts);
    let from = field(&parts, &["from", "sender"])
        .or_else(|| header(&h, "From").map(Into::into))
        .ok_or_else(|| Error::bad_request("the email has no `from`"))?;
    let (name, addr) = parse_mailbox(&from).ok_or_else(|| Error::bad_request("`from` is not an email address"))?;
    let subject = field(&parts, &["subject"]).map(|s| s.trim().to_string()).unwrap_or_default();
    let text = match field(&parts, &["stripped-text", "text", "body-plain"]) {
        Some(t) => trim_quoted(&t),
        None => field(&parts, &["stripped-html", "html", "body-html"])
            .map(|h| trim_quoted(&html_to_text(&h)))
            .unwrap_or_default(),
    };
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for p in parts.iter().filter(|p| p.file.is_some() && !p.value.is_empty()) {
        let name = p.file.as_deref().map(crate::media::upload::clean_name).filter(|n| !n.is_empty());
        if files.len() < MAX_FILES {
            files.push(crate::channels::InboundFile { name, bytes: p.value.clone() });
        } else {
            let n = name.unwrap_or_else(|| "unnamed".into());
            skipped.push(format!("[attachment not kept: {n} ({} bytes): more than {MAX_FILES} files]", p.value.len()));
        }
    }
    let text = [text].into_iter().chain(skipped).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n");
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let message_id =
        header(&h, "Message-ID").and_then(|v| message_ids(v).into_iter().next()).unwrap_or(format!("<{hex}@inbound>"));
    let mut references = header(&h, "References").map(message_ids).unwrap_or_default();
    let mut replies_to = header(&h, "In-Reply-To").map(message_ids).unwrap_or_default();
    replies_to.extend(references.iter().rev().cloned());
    references.push(message_id.clone());
    Ok(Email {
        from: Address { kind: AddressType::Email, target: addr, name },
        subject,
        text: if text.trim().is_empty() && files.is_empty() { "(empty email)".into() } else { text },
        message_id,
        replies_to,
        references,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multipart(fields: &[(&str, &str)]) -> (String, Bytes) {
        let mut body = String::new();
        for (k, v) in fields {
            body.push_str(&format!("--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
        }
        body.push_str("--XyZ\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"a.pdf\"\r\n");
        body.push_str("Content-Type: application/pdf\r\n\r\n%PDF\r\n--XyZ--\r\n");
        ("multipart/form-data; boundary=XyZ".into(), Bytes::from(body))
    }

    #[tokio::test]
    async fn sendgrid_shaped_post() {
        let headers =
            "Message-ID: <m2@mail.x>\nIn-Reply-To: <out1@switchboard>\nReferences: <m1@mail.x>\n <out1@switchboard>";
        let (ct, body) = multipart(&[
            ("from", "Alice <ALICE@x.org>"),
            ("subject", "Re: Order"),
            ("text", "Great\n\nOn Mon, Support wrote:\n> hi"),
            ("headers", headers),
        ]);
        let e = parse(&ct, body).await.unwrap();
        assert_eq!((e.from.target.as_str(), e.from.name.as_str()), ("alice@x.org", "Alice"));
        assert_eq!(e.text, "Great");
        assert_eq!((e.files.len(), e.files[0].name.as_deref()), (1, Some("a.pdf")));
        assert_eq!(&e.files[0].bytes[..], b"%PDF");
        assert_eq!(e.message_id, "<m2@mail.x>");
        assert_eq!(e.replies_to, ["<out1@switchboard>", "<out1@switchboard>", "<m1@mail.x>"]);
        assert_eq!(e.references, ["<m1@mail.x>", "<out1@switchboard>", "<m2@mail.x>"]);
    }

    #[tokio::test]
    async fn mailgun_urlencoded_and_garbage() {
        let body = "sender=bob%40y.org&subject=Hi&body-plain=Hello&Message-Id=%3Cg1%40y%3E";
        let e = parse("application/x-www-form-urlencoded", Bytes::from(body)).await.unwrap();
        assert_eq!((e.from.target.as_str(), e.text.as_str(), e.message_id.as_str()), ("bob@y.org", "Hello", "<g1@y>"));
        assert!(parse("text/plain", Bytes::from("x")).await.is_err());
        assert!(parse("application/x-www-form-urlencoded", Bytes::from("text=hi")).await.is_err());
    }
}
