//! Outbound email attachments: which of a message's medias go out as real MIME attachments
//! and which stay links in the text.
//!
//! A media the hub stores (`media_id`) is read from storage and attached with its sniffed
//! type and file name, as long as the attachments of one email stay within
//! `media.email_attachment_max_bytes` (mail servers refuse large messages, and base64 adds a
//! third); a media past that cap, one that is no longer stored, or a plain URL media is sent
//! as a link instead. Owns that choice and the read; the MIME layout is `email::build`'s.
//!
//! Why a cap and not "attach everything": a 100 MiB video would be refused by the recipient's
//! server and the whole mail bounced, so it degrades to a (signed, expiring) link like on
//! channels that cannot carry a type.

use crate::app::AppState;
use crate::model::Media;
use futures_util::StreamExt;

/// One attachment, read whole (an email is built in memory: it is bounded by the cap).
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// The medias split into attachments and links (see the module docs). Without `state` (a
/// send without the outbox's context) everything is a link.
pub async fn split<'m>(state: Option<&AppState>, medias: &'m [Media]) -> (Vec<Attachment>, Vec<&'m Media>) {
    let Some(state) = state else { return (Vec::new(), medias.iter().collect()) };
    let mut budget = state.config.media.email_attachment_max_bytes;
    let mut attached = Vec::new();
    let mut links = Vec::new();
    for m in medias {
        match load(state, m, budget).await {
            Some(a) => {
                budget -= a.bytes.len() as u64;
                attached.push(a);
            }
            None => links.push(m),
        }
    }
    (attached, links)
}

/// The stored bytes of `m` if it is a stored media of at most `budget` bytes.
async fn load(state: &AppState, m: &Media, budget: u64) -> Option<Attachment> {
    let id = m.media_id?;
    let record = match state.media.records.get(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(media = %id, error = %e.chain(), "media record not read; sent as a link");
            return None;
        }
    };
    if record.size > budget {
        return None;
    }
    let mut body = match state.media.storage.get(&record.key(), None).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(media = %id, error = %e.chain(), "media object not read; sent as a link");
            return None;
        }
    };
    let mut bytes = Vec::with_capacity(record.size as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.ok()?;
        if (bytes.len() + chunk.len()) as u64 > budget {
            return None;
        }
        bytes.extend_from_slice(&chunk);
    }
    let name = record.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| default_name(&record));
    Some(Attachment { name, content_type: record.content_type.clone(), bytes })
}

/// `file.<ext>` from the type, for a media that came without a name.
fn default_name(r: &crate::media::MediaRecord) -> String {
    let essence = r.content_type.split(';').next().unwrap_or("").trim();
    let ext = match essence {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "application/pdf" => "pdf",
        "audio/mpeg" => "mp3",
        "video/mp4" => "mp4",
        "text/plain" => "txt",
        "application/zip" => "zip",
        _ => "bin",
    };
    format!("file-{}.{ext}", &r.id.simple().to_string()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_media_get_a_name_from_their_type() {
        let r = crate::media::MediaRecord {
            id: uuid::Uuid::nil(),
            tenant: uuid::Uuid::nil(),
            content_type: "application/pdf".into(),
            size: 1,
            sha256: String::new(),
            name: None,
            width: None,
            height: None,
            thumbnail: false,
            conversation_id: None,
            created_at: crate::model::now(),
        };
        assert_eq!(default_name(&r), "file-00000000.pdf");
    }
}
