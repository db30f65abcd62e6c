//! The single task that owns this node's Redis subscriptions.
//!
//! Owns the subscription set and the link's life: `room_interest` only *notifies* this task,
//! which compares the set with the hub (`hub.has_room`) at the moment it acts, so racing
//! joins and leaves cannot leave it subscribed to a dead room or deaf to a live one. It hands
//! received frames to the hub untouched. After every (re)subscription it sends the hub a
//! `Publication::sync` with the room's current seq from the store: anything published before
//! the subscription took effect — while joining, or during an outage — is then filled from
//! history by each session. It does not publish (the store and the broker handle do).

use super::link::Link;
use crate::hub::{Hub, Publication};
use crate::store::Store;
use crate::store::redis::{Keys, parse_channel_payload};
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often an idle link is pinged to notice a connection that died without closing.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Rooms synced concurrently after a (re)subscription.
const SYNC_CONCURRENCY: usize = 32;

pub(super) struct Control {
    pub url: String,
    pub cluster: bool,
    pub timeout: Duration,
    pub keys: Keys,
    pub hub: Hub,
    pub store: Arc<dyn Store>,
    /// Interest notifications; closed when the broker is dropped, which ends the task.
    pub interest: mpsc::UnboundedReceiver<Uuid>,
}

/// Why the steady state ended.
enum Exit {
    /// The broker is gone: stop for good.
    Stop,
    /// The link failed: reconnect.
    Lost,
}

impl Control {
    pub async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.connect().await {
                Some((link, subscribed)) => {
                    backoff = BACKOFF_MIN;
                    match self.serve(link, subscribed).await {
                        Exit::Stop => return,
                        Exit::Lost => tracing::warn!("redis pub/sub link lost; reconnecting"),
                    }
                }
                None => {
                    // Keep consuming notifications while waiting, so a dropped broker still
                    // ends the task; the hub is re-read in full on reconnect anyway.
                    let sleep = tokio::time::sleep(backoff);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            n = self.interest.recv() => if n.is_none() { return },
                        }
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// A new link subscribed to every room the hub has now, or `None` after logging why not.
    async fn connect(&mut self) -> Option<(Link, HashSet<Uuid>)> {
        let t = self.timeout;
        let mut link = match tokio::time::timeout(t * 2, Link::connect(&self.url, self.cluster, t)).await {
            Ok(Ok(link)) => link,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis pub/sub connect failed");
                return None;
            }
            Err(_) => {
                tracing::warn!("redis pub/sub connect timed out");
                return None;
            }
        };
        while self.interest.try_recv().is_ok() {}
        let rooms: HashSet<Uuid> = self.hub.rooms().into_iter().collect();
        let channels: Vec<String> = rooms.iter().map(|r| self.keys.room_channel(*r)).collect();
        if let Err(e) = bounded(t, link.subscribe(&channels)).await {
            tracing::warn!(error = %e, "redis pub/sub resubscribe failed");
            return None;
        }
        self.sync(rooms.iter().copied().collect());
        Some((link, rooms))
    }

    async fn serve(&mut self, mut link: Link, mut subscribed: HashSet<Uuid>) -> Exit {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                n = self.interest.recv() => {
                    let Some(room) = n else { return Exit::Stop };
                    let mut rooms = HashSet::from([room]);
                    while let Ok(r) = self.interest.try_recv() {
                        rooms.insert(r);
                    }
                    if let Err(e) = self.reconcile(&mut link, &mut subscribed, rooms).await {
                        tracing::warn!(error = %e, "redis (un)subscribe failed");
                        return Exit::Lost;
                    }
                }
                m = link.next() => match m {
                    Some(msg) => self.deliver(&msg),
                    None => return Exit::Lost,
                },
                _ = ping.tick() => {
                    if let Err(e) = bounded(self.timeout, link.ping()).await {
                        tracing::warn!(error = %e, "redis pub/sub ping failed");
                        return Exit::Lost;
                    }
                }
            }
        }
    }

    /// Brings the subscriptions of `rooms` in line with the hub as it is now.
    async fn reconcile(
        &self,
        link: &mut Link,
        subscribed: &mut HashSet<Uuid>,
        rooms: HashSet<Uuid>,
    ) -> Result<(), String> {
        let (mut join, mut leave) = (Vec::new(), Vec::new());
        for room in rooms {
            match (self.hub.has_room(room), subscribed.contains(&room)) {
                (true, false) => join.push(room),
                (false, true) => leave.push(room),
                _ => {}
            }
        }
        let channels = |rooms: &[Uuid]| rooms.iter().map(|r| self.keys.room_channel(*r)).collect::<Vec<_>>();
        bounded(self.timeout, link.subscribe(&channels(&join))).await?;
        subscribed.extend(join.iter().copied());
        bounded(self.timeout, link.unsubscribe(&channels(&leave))).await?;
        for room in &leave {
            subscribed.remove(room);
        }
        self.sync(join);
        Ok(())
    }

    /// Hands one received frame to the local subscribers of its room.
    fn deliver(&self, msg: &redis::Msg) {
        let Some(room) = self.keys.room_of_channel(msg.get_channel_name()) else { return };
        let Some((seq, frame)) = parse_channel_payload(msg.get_payload_bytes()) else {
            tracing::warn!(channel = msg.get_channel_name(), "ignoring a malformed room publication");
            return;
        };
        // An empty frame would be mistaken for a sync marker (or sent as an empty text frame).
        if frame.is_empty() {
            return;
        }
        self.hub.fanout(Publication { room, seq, frame: Utf8Bytes::from(frame) });
    }

    /// In the background, tells the hub how far each room's history reaches, retrying rooms
    /// whose state cannot be read yet (the command connection may still be reconnecting).
    fn sync(&self, rooms: Vec<Uuid>) {
        if rooms.is_empty() {
            return;
        }
        let (hub, store) = (self.hub.clone(), self.store.clone());
        tokio::spawn(async move {
            let mut pending = rooms;
            let mut wait = BACKOFF_MIN;
            for _ in 0..8 {
                let results: Vec<(Uuid, bool)> = futures_util::stream::iter(pending)
                    .map(|room| {
                        let (hub, store) = (hub.clone(), store.clone());
                        async move {
                            match store.room_state(room).await {
                                Ok(Some(s)) if s.seq > 0 => {
                                    hub.fanout(Publication::sync(room, s.seq));
                                    (room, true)
                                }
                                Ok(_) => (room, true),
                                Err(_) => (room, false),
                            }
                        }
                    })
                    .buffer_unordered(SYNC_CONCURRENCY)
                    .collect()
                    .await;
                pending = results.into_iter().filter(|(_, ok)| !ok).map(|(r, _)| r).collect();
                if pending.is_empty() {
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(BACKOFF_MAX);
            }
            tracing::warn!(
                rooms = pending.len(),
                "could not sync rooms after resubscribing; they catch up on the next message"
            );
        });
    }
}

/// `f` bounded by `t`, with the error as text.
async fn bounded<T>(t: Duration, f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(t, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("timed out after {} ms", t.as_millis())),
    }
}
