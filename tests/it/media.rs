//! Media: uploads (`POST /v1.0/media`) streamed to storage, signed downloads with Range and
//! safe serving headers, types and sizes refused, client-token scope, tenant isolation,
//! images (size, thumbnail, EXIF gone), messages referencing uploads, deletion with the
//! conversation, forged and expired links. Both store backends; S3 against a real
//! S3-compatible server in `media::s3`; channels in `media::outbound` and `media::inbound`.

mod email;
mod inbound;
mod outbound;
mod rehost_restart;
mod resign;
mod s3;
mod serving;

use crate::common::Api;
use serde_json::Value;

/// A multipart body with the text `fields` then a `file` part named `name`.
pub fn form(fields: &[(&str, &str)], name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "sbtestboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads `bytes` as `name` with `credential` (API key or token); status and JSON answer.
pub async fn upload(api: &Api, fields: &[(&str, &str)], name: &str, bytes: &[u8]) -> (u16, Value) {
    let (ct, body) = form(fields, name, bytes);
    let res = api
        .client
        .post(format!("{}/v1.0/media", api.base))
        .bearer_auth(&api.key)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// GET of a (signed) URL with optional `Range`, no credentials.
pub async fn fetch(url: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

/// A JPEG of `w`×`h` with an APP1 EXIF segment carrying a GPS position.
pub fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&img).unwrap();
    let payload = b"Exif\0\0MM\0*GPSLatitude=48.858370;GPSLongitude=2.294481";
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}
