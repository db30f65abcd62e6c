//! The `bigroom` scenario: one room, `members` connections (10,000 by default) joining within
//! `join` (10 s), then a publisher at 20 msg/s. What it shows: joins cost O(1) each (no
//! presence storm: issue 18), nobody is cut as a slow consumer (4008), and every member gets
//! every message.
//!
//! Members use operator tokens with an identity each (10,000 room participants would measure
//! the REST API, not the hub); the hub treats each identity as a member for presence.

use crate::peer::{self, Target};
use crate::scenarios::{Sweep, sweep};
use crate::servers::{Api, Proc};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize)]
pub struct BigRoom {
    pub members: usize,
    /// How long the joins took (offered: spread over `join`).
    pub joined_in_secs: f64,
    /// Members whose subscribe failed or whose connection was closed while joining.
    pub failed_joins: usize,
    pub sweep: Sweep,
}

pub async fn bigroom(node: &Proc, members: usize, join: Duration, rate: u64) -> anyhow::Result<BigRoom> {
    let epoch = Instant::now();
    let stop = CancellationToken::new();
    let api = Api::new(node);
    let room = api.conversation().await?;
    let mut tokens = Vec::with_capacity(members);
    for i in 0..members {
        tokens.push(api.operator_token(&format!("m{i}")).await?);
    }
    let started = tokio::time::Instant::now();
    let every = join.div_f64(members.max(1) as f64);
    let mut joins = Vec::with_capacity(members);
    for (i, token) in tokens.into_iter().enumerate() {
        tokio::time::sleep_until(started + every.mul_f64(i as f64)).await;
        let (t, room, stop) = (Target::Hub { ws_base: node.ws(), token }, room.clone(), stop.clone());
        joins.push(tokio::spawn(async move { peer::connect(&t, &room, false, 1, epoch, stop).await }));
    }
    let mut receivers = Vec::with_capacity(members);
    let mut failed_joins = 0;
    for j in joins {
        match j.await {
            Ok(Ok(p)) => receivers.push(p),
            _ => failed_joins += 1,
        }
    }
    let joined_in_secs = started.elapsed().as_secs_f64();
    let publisher = Target::Hub { ws_base: node.ws(), token: api.operator_token("publisher").await? };
    let publisher = peer::connect(&publisher, &room, true, 1, epoch, stop.clone()).await?;
    let fanout = receivers.len() as u64;
    let probe = crate::probe::Probe::of(node);
    let sweep = sweep(std::slice::from_ref(&publisher.tx), receivers, &[rate], fanout, epoch, stop, probe).await?;
    let _ = publisher.done.await;
    Ok(BigRoom { members, joined_in_secs, failed_joins, sweep })
}
