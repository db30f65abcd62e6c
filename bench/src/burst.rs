//! The `burst` scenario: `n` WebSockets (1,000 by default) opened at once, as when a node
//! restarts and every client reconnects. What it shows: the listen backlog holds the burst
//! (tokio's default of 128 overflowed it and clients waited out a SYN retry, about 1 s), and
//! how long until every connection is open and subscribed.
//!
//! Owns the concurrent connect and its clock; the connections themselves are `peer`'s.

use crate::peer::{self, Target};
use crate::servers::{Api, Proc};
use serde::Serialize;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    pub connections: usize,
    /// From the first connect to the last `subscribed` (hub) or open socket (baseline).
    pub secs: f64,
    pub failed: usize,
}

pub async fn burst(node: &Proc, hub: bool, n: usize) -> anyhow::Result<Burst> {
    let epoch = Instant::now();
    let stop = CancellationToken::new();
    let (target, room) = if hub {
        let api = Api::new(node);
        (Target::Hub { ws_base: node.ws(), token: api.operator_token("burst").await? }, api.conversation().await?)
    } else {
        (Target::Baseline { ws_base: node.ws() }, "burst".to_string())
    };
    let started = Instant::now();
    let joins: Vec<_> = (0..n)
        .map(|_| {
            let (t, room, stop) = (target.clone(), room.clone(), stop.clone());
            tokio::spawn(async move { peer::connect(&t, &room, false, 1, epoch, stop).await })
        })
        .collect();
    let (mut peers, mut failed) = (Vec::with_capacity(n), 0);
    for j in joins {
        match j.await {
            Ok(Ok(p)) => peers.push(p),
            _ => failed += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop.cancel();
    for p in peers {
        let _ = p.done.await;
    }
    Ok(Burst { connections: n, secs, failed })
}
