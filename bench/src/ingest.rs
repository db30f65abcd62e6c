//! `ingest`: signed Twilio-style inbound SMS webhooks per second, half from a pool of known
//! numbers (existing rooms), half from new numbers (room creation), with p99 latency.

use crate::probe::{self, Probe};
use crate::servers::{Api, Proc, TWILIO_TOKEN};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use switchboard::channels::twilio::signature;

#[derive(Debug, Clone, Serialize)]
pub struct Ingest {
    pub requests: u64,
    pub errors: u64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub concurrency: usize,
    /// Messages stored in all rooms after the run (sum of `last_seq`); must equal the
    /// accepted webhooks — fewer is a loss, more a duplicate.
    pub stored: u64,
    /// Server and Redis CPU per webhook (µs), Redis commands per webhook.
    pub server_cpu_us: Option<f64>,
    pub redis_cpu_us: Option<f64>,
    pub redis_calls: Vec<(String, f64)>,
}

/// Runs `concurrency` workers posting webhooks for `duration`; `redis_port`: the node's Redis,
/// measured too.
pub async fn ingest(
    node: &Proc,
    concurrency: usize,
    duration: Duration,
    redis_port: Option<u16>,
) -> anyhow::Result<Ingest> {
    let api = Api::new(node);
    let acc = api
        .post(
            "/v1.0/conversation_accounts",
            serde_json::json!({"type": "tel", "provider": "twilio", "name": "bench", "address": "+15005550006",
                "credentials": {"account_sid": "AC00000000000000000000000000000000", "auth_token": TWILIO_TOKEN},
                "api_base_url": "http://127.0.0.1:9"}),
        )
        .await?;
    let url = format!("{}/v1.0/hooks/twilio/{}", node.http(), acc["id"].as_str().unwrap_or_default());
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let probe = redis_port.map_or(Probe::of(node), |p| Probe::of(node).with_redis(p));
    let before = probe.read();
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (http, url, counter, errors) = (http.clone(), url.clone(), counter.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            while start.elapsed() < duration {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                // Even n: one of 200 regulars; odd n: a number never seen before.
                let from = if n % 2 == 0 { format!("+1555{:07}", n % 200) } else { format!("+1666{w:03}{n:07}") };
                let params: Vec<(String, String)> = vec![
                    ("MessageSid".into(), format!("SM{n:032x}")),
                    ("AccountSid".into(), "AC00000000000000000000000000000000".into()),
                    ("From".into(), from),
                    ("To".into(), "+15005550006".into()),
                    ("Body".into(), format!("bench message {n}")),
                    ("NumMedia".into(), "0".into()),
                ];
                let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
                let sig = signature(TWILIO_TOKEN, &url, &params);
                let t = Instant::now();
                let ok = http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-twilio-signature", sig)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                let _ = h.record((t.elapsed().as_micros() as u64).max(1));
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            h
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    for w in workers {
        all.add(&w.await?).expect("same bounds");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = probe.read();
    let n = all.len();
    let stored = stored_messages(&api).await?;
    Ok(Ingest {
        requests: all.len(),
        errors: errors.load(Ordering::Relaxed),
        per_sec: all.len() as f64 / elapsed,
        p50_ms: all.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: all.max() as f64 / 1000.0,
        concurrency,
        stored,
        server_cpu_us: probe::per_message(before.server, after.server, n),
        redis_cpu_us: probe::per_message(before.redis, after.redis, n),
        redis_calls: probe::calls_per_message(&before, &after, n),
    })
}

/// The sum of every conversation's `last_seq`, paging through the tenant's list.
async fn stored_messages(api: &Api) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("/v1.0/conversations?page_size=100&page_token={t}"),
            None => "/v1.0/conversations?page_size=100".to_string(),
        };
        let page = api.get(&path).await?;
        for c in page["result"].as_array().into_iter().flatten() {
            total += c["last_seq"].as_u64().unwrap_or(0);
        }
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return Ok(total),
        }
    }
}
