//! Raster images: width and height, a JPEG thumbnail of at most 320 px, and metadata that
//! could locate the sender (EXIF, with its GPS block, and XMP) removed from the stored file.
//!
//! Metadata is removed by dropping the container segments that hold it (JPEG APP1, PNG
//! `eXIf`/`iTXt`, WebP `EXIF`/`XMP `), not by re-encoding: the picture itself stays
//! bit-for-bit what was sent. Decoding is bounded (dimensions and memory), so a decompression
//! bomb is refused rather than exhausting the node. CPU-bound: callers run it on the blocking
//! pool. Owns image bytes in and out, nothing about storage.

use crate::error::{Error, Result};
use std::io::Cursor;

/// Longest side of a thumbnail.
pub const THUMB_PX: u32 = 320;
const MAX_SIDE: u32 = 16_384;

/// What processing an image gave.
#[derive(Debug)]
pub struct Processed {
    /// The image to store: metadata removed.
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// JPEG, longest side at most [`THUMB_PX`].
    pub thumbnail: Vec<u8>,
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::invalid("invalid_image", format!("the image cannot be read: {e}"))
}

/// Strips metadata, measures and thumbnails `bytes` of type `content_type`.
pub fn process(content_type: &str, bytes: Vec<u8>) -> Result<Processed> {
    let bytes = match content_type {
        "image/jpeg" => strip_jpeg(&bytes).unwrap_or(bytes),
        "image/png" => strip_png(&bytes).unwrap_or(bytes),
        "image/webp" => strip_webp(&bytes).unwrap_or(bytes),
        _ => bytes,
    };
    let mut reader = image::ImageReader::new(Cursor::new(&bytes)).with_guessed_format().map_err(bad)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(bad)?;
    let (width, height) = (img.width(), img.height());
    let thumb = img.thumbnail(THUMB_PX, THUMB_PX).to_rgb8();
    let mut thumbnail = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail, 80).encode_image(&thumb).map_err(bad)?;
    Ok(Processed { bytes, width, height, thumbnail })
}

/// JPEG without its APP1 segments (EXIF and XMP). `None` when the file is not laid out as
/// expected (then it is decoded as sent, and refused if it cannot be).
pub fn strip_jpeg(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        // Start of scan: the entropy-coded data and the rest follow; copied as is.
        if marker == 0xDA {
            out.extend_from_slice(&b[i..]);
            return Some(out);
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let end = i + 2 + len;
        if len < 2 || end > b.len() {
            return None;
        }
        if marker != 0xE1 {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
    }
    None
}

/// PNG without `eXIf` and `iTXt` (XMP) chunks.
pub fn strip_png(b: &[u8]) -> Option<Vec<u8>> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !b.starts_with(SIG) {
        return None;
    }
    let mut out = SIG.to_vec();
    let mut i = SIG.len();
    while i + 12 <= b.len() {
        let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let end = i.checked_add(12)?.checked_add(len)?;
        if end > b.len() {
            return None;
        }
        let kind = &b[i + 4..i + 8];
        if kind != b"eXIf" && kind != b"iTXt" {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
    }
    Some(out)
}

/// WebP without `EXIF` and `XMP ` chunks (and their flags in `VP8X`).
pub fn strip_webp(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WEBP" {
        return None;
    }
    let mut out = b[..12].to_vec();
    let mut i = 12;
    while i + 8 <= b.len() {
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let end = (i + 8).checked_add(len + (len & 1))?.min(b.len());
        let kind = &b[i..i + 4];
        if kind == b"VP8X" && i + 9 <= b.len() {
            let mut chunk = b[i..end].to_vec();
            chunk[8] &= !0b0000_1100;
            out.extend_from_slice(&chunk);
        } else if kind != b"EXIF" && kind != b"XMP " {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
    }
    let size = u32::try_from(out.len() - 8).ok()?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_app1_is_dropped() {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&img).unwrap();
        let mut exif = vec![0xFF, 0xE1];
        let payload = b"Exif\0\0GPSLatitude 48.8584";
        exif.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        exif.extend_from_slice(payload);
        let mut with = jpeg[..2].to_vec();
        with.extend_from_slice(&exif);
        with.extend_from_slice(&jpeg[2..]);
        let p = process("image/jpeg", with).unwrap();
        assert!(!p.bytes.windows(4).any(|w| w == b"Exif"));
        assert_eq!((p.width, p.height), (8, 8));
    }
}
