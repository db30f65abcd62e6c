//! Load-generator connections: one task per WebSocket, reading frames into per-step stats and
//! sending when the scheduler tells it to.
//!
//! Frames are not parsed as JSON — that would make the generator, which shares the 2 cores
//! with the server, the bottleneck. A frame's `"seq":N` and the `t=<ns>;s=<step>;` marker the
//! publisher put in the text are found by substring search. Every peer checks that seqs
//! arrive gap-free, once and in order; the run fails loudly otherwise.

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// How to reach the server under test.
#[derive(Debug, Clone)]
pub enum Target {
    /// Switchboard: `ws_base` + token; frames are the hub protocol.
    Hub { ws_base: String, token: String },
    /// The baseline broadcast server.
    Baseline { ws_base: String },
}

/// What a peer measured, per step.
#[derive(Debug, Clone)]
pub struct PeerStats {
    pub received: Vec<u64>,
    pub latency: Vec<Histogram<u64>>,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub last_seq: u64,
}

impl PeerStats {
    pub fn new(steps: usize) -> PeerStats {
        PeerStats {
            received: vec![0; steps],
            latency: (0..steps).map(|_| Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds")).collect(),
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
            last_seq: 0,
        }
    }

    pub fn merge(&mut self, o: &PeerStats) {
        for (i, n) in o.received.iter().enumerate() {
            self.received[i] += n;
            self.latency[i].add(&o.latency[i]).expect("same bounds");
        }
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.out_of_order += o.out_of_order;
    }
}

/// The decimal number right after the first `pat` in `s` (memchr's SIMD substring search:
/// the generator reads every delivery, so this is its hottest loop).
fn number_after(s: &str, pat: &str) -> Option<u64> {
    let s = s.as_bytes();
    let i = memchr::memmem::find(s, pat.as_bytes())? + pat.len();
    let mut n: u64 = 0;
    let mut digits = 0;
    for &b in &s[i..] {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(n)
}

/// The payload a publisher sends: when (ns since `epoch`) and in which step.
pub fn payload(epoch: Instant, step: usize) -> String {
    format!("t={};s={step};", epoch.elapsed().as_nanos())
}

/// A connected peer: feed it texts to send through `tx`; it stops when `stop` fires.
pub struct Peer {
    pub tx: mpsc::UnboundedSender<String>,
    pub done: tokio::task::JoinHandle<PeerStats>,
}

/// Connects, joins `room` (unless `publish_only`) and starts the peer task.
pub async fn connect(
    target: &Target,
    room: &str,
    publish_only: bool,
    steps: usize,
    epoch: Instant,
    stop: CancellationToken,
) -> anyhow::Result<Peer> {
    let url = match target {
        Target::Hub { ws_base, token } => format!("{ws_base}/v1.0/ws?token={token}"),
        Target::Baseline { ws_base } => format!("{ws_base}/ws?room={room}&publish={publish_only}"),
    };
    // Small buffers, as on the servers: tungstenite's 128 KiB default read buffer is
    // zero-filled on reads, which made memset the generator's top cost.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(8192);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config), true).await?;
    let hub = matches!(target, Target::Hub { .. });
    if hub && !publish_only {
        let sub = format!(r#"{{"type":"subscribe","conversation_id":"{room}"}}"#);
        ws.send(Message::Text(sub.into())).await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
                Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => break,
                Some(Ok(Message::Text(t))) if t.contains("\"error\"") => anyhow::bail!("subscribe failed: {t}"),
                Some(Ok(_)) => continue,
                other => anyhow::bail!("connection lost while subscribing: {other:?}"),
            }
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let room = room.to_string();
    let done = tokio::spawn(async move {
        let mut st = PeerStats::new(steps);
        let mut n = 0u64;
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                Some(text) = rx.recv() => {
                    n += 1;
                    let frame = if hub {
                        format!(r#"{{"type":"send","conversation_id":"{room}","text":"{text}","client_id":"{n}"}}"#)
                    } else {
                        text
                    };
                    if ws.send(Message::Text(frame.into())).await.is_err() {
                        break;
                    }
                }
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => observe(&mut st, t.as_str(), epoch),
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
        st
    });
    Ok(Peer { tx, done })
}

fn observe(st: &mut PeerStats, t: &str, epoch: Instant) {
    // Hub frames other than messages (acks, presence) carry no `t=` marker.
    let (Some(sent), Some(step)) = (number_after(t, "t="), number_after(t, ";s=")) else { return };
    let Some(seq) = number_after(t, "\"seq\":") else { return };
    if seq == st.last_seq {
        st.duplicated += 1;
        return;
    }
    if seq < st.last_seq {
        st.out_of_order += 1;
        return;
    }
    st.lost += seq - st.last_seq - 1;
    st.last_seq = seq;
    let step = step as usize;
    if step < st.received.len() {
        st.received[step] += 1;
        let us = (epoch.elapsed().as_nanos() as u64).saturating_sub(sent) / 1000;
        let _ = st.latency[step].record(us.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observes_seq_gaps_duplicates_and_order() {
        let epoch = Instant::now();
        let mut st = PeerStats::new(1);
        let f = |seq: u64| format!(r#"{{"type":"message","message":{{"seq":{seq},"text":"t=1;s=0;"}}}}"#);
        for seq in [1, 2, 2, 4, 3, 5] {
            observe(&mut st, &f(seq), epoch);
        }
        assert_eq!((st.received[0], st.duplicated, st.lost, st.out_of_order), (4, 1, 1, 1));
        observe(&mut st, r#"{"type":"ack","seq":9}"#, epoch);
        assert_eq!(st.last_seq, 5, "acks are not deliveries");
    }
}
