//! What an upload is, from its first bytes, and whether the hub takes it.
//!
//! The type is sniffed (the `infer` crate, plus a plain-text check) and never taken from the
//! sender's `Content-Type` or file name: those are what an attacker controls. The allow-list:
//! images (JPEG, PNG, GIF, WebP; SVG accepted but only ever served as a download), audio,
//! video (MP4, WebM, QuickTime), PDF, plain text, ZIP and office documents. HTML and anything
//! else (executables, scripts…) are refused with 415. Owns the verdict and the size limit per
//! kind; serving rules (inline or attachment) follow from [`Sniffed::inline`].

use crate::config::MediaConfig;
use crate::error::{Error, Result};

/// Bytes looked at to decide (office documents are ZIPs whose telling entry comes early).
pub const HEAD_BYTES: usize = 8192;

/// Which size limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Audio,
    Video,
    File,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub content_type: String,
    pub kind: Kind,
}

impl Sniffed {
    fn new(ct: &str, kind: Kind) -> Sniffed {
        Sniffed { content_type: ct.to_string(), kind }
    }

    /// Served inline (images but SVG, audio, video); everything else is a download.
    pub fn inline(&self) -> bool {
        inline(&self.content_type)
    }

    /// A raster image the hub measures, thumbnails and strips metadata from.
    pub fn raster(&self) -> bool {
        matches!(self.content_type.as_str(), "image/jpeg" | "image/png" | "image/gif" | "image/webp")
    }

    /// The upload limit for this kind, from `[media]`.
    pub fn limit(&self, c: &MediaConfig) -> u64 {
        match self.kind {
            Kind::Image => c.max_image_bytes,
            Kind::Audio => c.max_audio_bytes,
            Kind::Video => c.max_video_bytes,
            Kind::File => c.max_file_bytes,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Image => "images",
            Kind::Audio => "audio",
            Kind::Video => "video",
            Kind::File => "files",
        }
    }
}

/// Whether a stored content type may be shown inline by a browser.
pub fn inline(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    (ct.starts_with("image/") && !ct.contains("svg")) || ct.starts_with("audio/") || ct.starts_with("video/")
}

const AUDIO: &[&str] = &[
    "audio/mpeg",
    "audio/ogg",
    "audio/x-wav",
    "audio/wav",
    "audio/aac",
    "audio/mp4",
    "audio/x-flac",
    "audio/amr",
    "audio/webm",
    "audio/opus",
    "audio/x-m4a",
];
const VIDEO: &[&str] = &["video/mp4", "video/webm", "video/quicktime", "video/3gpp"];
const FILES: &[&str] = &[
    "application/pdf",
    "application/zip",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/x-ole-storage",
];

fn refused(what: &str) -> Error {
    Error::UnsupportedMediaType(format!(
        "{what} is not accepted; send images (JPEG, PNG, GIF, WebP, SVG), audio, video (MP4, WebM), PDF, plain text, ZIP or office documents"
    ))
}

/// The verdict on `head`, the first bytes of an upload (all of it when shorter).
pub fn sniff(head: &[u8]) -> Result<Sniffed> {
    if head.is_empty() {
        return Err(Error::invalid("empty_file", "the file is empty"));
    }
    if looks_like_svg(head) {
        return Ok(Sniffed::new("image/svg+xml", Kind::Image));
    }
    if let Some(t) = infer::get(head) {
        let m = t.mime_type();
        return match m {
            "image/jpeg" | "image/png" | "image/gif" | "image/webp" => Ok(Sniffed::new(m, Kind::Image)),
            "audio/x-m4a" | "audio/m4a" => Ok(Sniffed::new("audio/mp4", Kind::Audio)),
            m if AUDIO.contains(&m) => Ok(Sniffed::new(m, Kind::Audio)),
            m if VIDEO.contains(&m) => Ok(Sniffed::new(m, Kind::Video)),
            m if FILES.contains(&m) => Ok(Sniffed::new(m, Kind::File)),
            "text/html" => Err(refused("HTML")),
            m => Err(refused(&format!("`{m}`"))),
        };
    }
    if is_text(head) {
        if looks_like_html(head) {
            return Err(refused("HTML"));
        }
        return Ok(Sniffed::new("text/plain; charset=utf-8", Kind::File));
    }
    Err(refused("this type of file"))
}

fn lower_start(head: &[u8]) -> String {
    let n = head.len().min(1024);
    String::from_utf8_lossy(&head[..n]).trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase()
}

fn looks_like_svg(head: &[u8]) -> bool {
    let s = lower_start(head);
    (s.starts_with("<svg") || s.starts_with("<?xml") || s.starts_with("<!doctype svg")) && s.contains("<svg")
}

fn looks_like_html(head: &[u8]) -> bool {
    let s = lower_start(head);
    ["<!doctype html", "<html", "<head", "<body", "<script", "<iframe", "<?xml"].iter().any(|p| s.starts_with(p))
}

/// UTF-8 (a character cut at the end of `head` allowed) without control characters.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() >= HEAD_BYTES,
    };
    valid && !head.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap().content_type, "image/png");
        assert_eq!(sniff(b"%PDF-1.7\n").unwrap().content_type, "application/pdf");
        assert_eq!(sniff(b"hello there\n").unwrap().content_type, "text/plain; charset=utf-8");
        let svg = sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>").unwrap();
        assert!(!svg.inline());
        assert!(sniff(b"<!DOCTYPE html><html></html>").is_err());
        assert!(sniff(b"<html><script>alert(1)</script>").is_err());
        assert!(sniff(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0").is_err());
        assert!(sniff(b"").is_err());
    }
}
