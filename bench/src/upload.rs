//! The `upload` scenario: one large file (`--mib`, 100 MiB by default) streamed to
//! `POST /v1.0/media` of a fresh memory node (`fs` media backend in a temp directory), with the
//! server's resident memory sampled before, during (the peak of 20 ms samples) and after.
//!
//! What it shows: an upload is streamed to storage and hashed on the way, never held whole,
//! so the server's RSS grows by a small, size-independent amount — not by the file's size.
//! The body is plain text (sniffed as `text/plain`, the `max_file_bytes` limit, which the
//! bench node raises to 200 MiB), generated and sent in 64 KiB chunks, so the generator does
//! not hold it whole either.

use crate::servers::{API_KEY, Proc};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    pub size_mib: usize,
    pub status: u16,
    pub secs: f64,
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
    pub rss_after_mib: f64,
}

impl Upload {
    pub fn markdown(&self) -> String {
        format!(
            "| upload | status | time | RSS before | RSS peak | RSS after | peak growth |\n|---|---|---|---|---|---|---|\n\
             | {} MiB | {} | {:.1} s | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB |\n",
            self.size_mib,
            self.status,
            self.secs,
            self.rss_before_mib,
            self.rss_peak_mib,
            self.rss_after_mib,
            self.rss_peak_mib - self.rss_before_mib
        )
    }
}

const CHUNK: usize = 64 * 1024;
const BOUNDARY: &str = "benchboundary0123456789";

/// The multipart body: a `file` part of `mib` MiB of text, produced chunk by chunk.
fn body(mib: usize) -> reqwest::Body {
    let line = b"switchboard upload bench: a line of plain text, 64 bytes long..\n";
    let chunk = Bytes::from(line.repeat(CHUNK / line.len()));
    let chunks = mib * 1024 * 1024 / chunk.len();
    let head = Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    ));
    let tail = Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"));
    let parts = std::iter::once(head).chain(std::iter::repeat_n(chunk, chunks)).chain(std::iter::once(tail));
    reqwest::Body::wrap_stream(futures_util::stream::iter(parts.map(Ok::<Bytes, std::io::Error>)))
}

/// Uploads `mib` MiB to `node` and measures its RSS (see the module docs).
pub async fn upload(node: &Proc, mib: usize) -> anyhow::Result<Upload> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = node.rss_bytes();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let pid_rss = {
        let (peak, done) = (peak.clone(), done.clone());
        let pid = node.child.as_ref().map(|c| c.id()).unwrap_or(0);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(crate::servers::rss_of(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let res = reqwest::Client::new()
        .post(format!("{}/v1.0/media", node.http()))
        .bearer_auth(API_KEY)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body(mib))
        .send()
        .await?;
    let status = res.status().as_u16();
    let answer = res.text().await?;
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = pid_rss.await;
    anyhow::ensure!(status == 201, "upload answered {status}: {answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = node.rss_bytes();
    let mib_of = |b: u64| b as f64 / 1048576.0;
    Ok(Upload {
        size_mib: mib,
        status,
        secs,
        rss_before_mib: mib_of(before),
        rss_peak_mib: mib_of(peak.load(Ordering::Relaxed).max(after)),
        rss_after_mib: mib_of(after),
    })
}
