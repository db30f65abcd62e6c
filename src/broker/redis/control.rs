//! The single task that owns this node's Redis subscriptions.
//!
//! Owns the subscription set and the link's life: `room_interest` only *notifies* this task,
//! which compares the set with the hub (`hub.has_room`) at the moment it acts, so racing
//! joins and leaves cannot leave it subscribed to a dead room or deaf to a live one. It hands
//! received publications to the one [`Handler`] as they came. After every (re)subscription it
//! sends the hub a `Publication::Sync` with the room's current seq from the store: anything published before
//! the subscription took effect — while joining, or during an outage — is then filled from
//! history by each session. It does not publish (the store and the broker handle do).
//!
//! Tenants are handled the same way for conversation watchers (`crate::watch`): the task
//! subscribes to `P:events:<tenant>` while the node has watchers of that tenant, hands what
//! arrives to the handler, and tells the watchers once subscribed — with `resync`
//! after a reconnect, since events published during the outage are gone. The node-wide
//! `P:sessions:ended` channel (ended sign-in sessions) is subscribed on every link.

use super::link::Link;
use crate::broker::Handler;
use crate::redis::Keys;
use crate::store::Store;
use crate::wire::Publication;
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
    /// PEM CA for `rediss://` (`redis.tls_ca_file`), read at start-up.
    pub ca: Option<Vec<u8>>,
    pub timeout: Duration,
    pub keys: Keys,
    pub handler: Handler,
    pub store: Arc<dyn Store>,
    /// Interest notifications; closed when the broker is dropped, which ends the task.
    pub interest: mpsc::UnboundedReceiver<Interest>,
}

/// What the node's interest changed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Interest {
    /// Local subscribers of a room.
    Room(Uuid),
    /// Local conversation watchers of a tenant.
    Tenant(Uuid),
}

/// What the link is subscribed to.
#[derive(Debug, Default)]
struct Subscribed {
    rooms: HashSet<Uuid>,
    tenants: HashSet<Uuid>,
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
                        Exit::Lost => {
                            self.handler.all_offline();
                            tracing::warn!("redis pub/sub link lost; reconnecting");
                        }
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
    async fn connect(&mut self) -> Option<(Link, Subscribed)> {
        let t = self.timeout;
        let mut link =
            match tokio::time::timeout(t * 2, Link::connect(&self.url, self.cluster, self.ca.as_deref(), t)).await {
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
        let rooms: HashSet<Uuid> = self.handler.hub().rooms().into_iter().collect();
        let tenants: HashSet<Uuid> = self.handler.watchers().tenants().into_iter().collect();
        let mut channels: Vec<String> = rooms.iter().map(|r| self.keys.room_channel(*r)).collect();
        channels.extend(tenants.iter().map(|t| self.keys.events_channel(*t)));
        // Always: ended sign-in sessions close their sockets on every node.
        channels.push(self.keys.sessions_channel());
        if let Err(e) = bounded(t, link.subscribe(&channels)).await {
            tracing::warn!(error = %e, "redis pub/sub resubscribe failed");
            return None;
        }
        // Subscribed: from here on every membership change of these rooms reaches us.
        for room in &rooms {
            self.handler.room_live(*room);
        }
        self.sync(rooms.iter().copied().collect());
        for tenant in &tenants {
            self.handler.tenant_live(*tenant, true);
        }
        Some((link, Subscribed { rooms, tenants }))
    }

    async fn serve(&mut self, mut link: Link, mut subscribed: Subscribed) -> Exit {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                n = self.interest.recv() => {
                    let Some(first) = n else { return Exit::Stop };
                    let mut changed = HashSet::from([first]);
                    while let Ok(i) = self.interest.try_recv() {
                        changed.insert(i);
                    }
                    if let Err(e) = self.reconcile(&mut link, &mut subscribed, changed).await {
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

    /// Brings the subscriptions of the `changed` rooms and tenants in line with the hub and
    /// its watchers as they are now.
    async fn reconcile(
        &self,
        link: &mut Link,
        subscribed: &mut Subscribed,
        changed: HashSet<Interest>,
    ) -> Result<(), String> {
        let watchers = self.handler.watchers();
        let (mut join, mut leave, mut join_t, mut leave_t, mut live) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in changed {
            match i {
                Interest::Room(room) => match (self.handler.hub().has_room(room), subscribed.rooms.contains(&room)) {
                    (true, false) => join.push(room),
                    (false, true) => leave.push(room),
                    _ => {}
                },
                Interest::Tenant(t) => match (watchers.has_tenant(t), subscribed.tenants.contains(&t)) {
                    (true, false) => join_t.push(t),
                    (false, true) => leave_t.push(t),
                    // Already listening: a new watcher only needs its `watching`.
                    (true, true) => live.push(t),
                    (false, false) => {}
                },
            }
        }
        let mut channels: Vec<String> = join.iter().map(|r| self.keys.room_channel(*r)).collect();
        channels.extend(join_t.iter().map(|t| self.keys.events_channel(*t)));
        bounded(self.timeout, link.subscribe(&channels)).await?;
        subscribed.rooms.extend(join.iter().copied());
        for room in &join {
            self.handler.room_live(*room);
        }
        subscribed.tenants.extend(join_t.iter().copied());
        // Forgotten before the unsubscription can take effect: nothing missed is ever cached.
        for room in &leave {
            self.handler.room_dead(*room);
        }
        let mut channels: Vec<String> = leave.iter().map(|r| self.keys.room_channel(*r)).collect();
        channels.extend(leave_t.iter().map(|t| self.keys.events_channel(*t)));
        bounded(self.timeout, link.unsubscribe(&channels)).await?;
        for room in &leave {
            subscribed.rooms.remove(room);
        }
        for t in &leave_t {
            subscribed.tenants.remove(t);
        }
        self.sync(join);
        for t in join_t.into_iter().chain(live) {
            watchers.live(t, false);
        }
        Ok(())
    }

    /// Hands one received frame to the local subscribers of its room.
    fn deliver(&self, msg: &redis::Msg) {
        if self.keys.is_sessions_channel(msg.get_channel_name()) {
            return match std::str::from_utf8(msg.get_payload_bytes()) {
                Ok(sid) => self.handler.session_ended(sid),
                Err(_) => tracing::warn!("ignoring a malformed session end"),
            };
        }
        let Some(room) = self.keys.room_of_channel(msg.get_channel_name()) else {
            return self.deliver_event(msg);
        };
        match Publication::decode(room, msg.get_payload_bytes()) {
            Some(p) => self.handler.publication(p),
            None => tracing::warn!(channel = msg.get_channel_name(), "ignoring a malformed room publication"),
        }
    }

    /// Hands one event from a tenant's event channel to the node's watchers of that tenant.
    fn deliver_event(&self, msg: &redis::Msg) {
        if self.keys.tenant_of_events_channel(msg.get_channel_name()).is_none() {
            return;
        }
        match serde_json::from_slice::<crate::broker::Event>(msg.get_payload_bytes()) {
            Ok(event) => self.handler.event(&event),
            Err(e) => tracing::warn!(error = %e, channel = msg.get_channel_name(), "ignoring a malformed event"),
        }
    }

    /// In the background, tells the hub how far each room's history reaches, retrying rooms
    /// whose state cannot be read yet (the command connection may still be reconnecting).
    fn sync(&self, rooms: Vec<Uuid>) {
        if rooms.is_empty() {
            return;
        }
        let (handler, store) = (self.handler.clone(), self.store.clone());
        tokio::spawn(async move {
            let mut pending = rooms;
            let mut wait = BACKOFF_MIN;
            for _ in 0..8 {
                let results: Vec<(Uuid, bool)> = futures_util::stream::iter(pending)
                    .map(|room| {
                        let (handler, store) = (handler.clone(), store.clone());
                        async move {
                            match store.room_state(room).await {
                                Ok(Some(s)) if s.seq > 0 => {
                                    handler.publication(Publication::Sync { room, seq: s.seq });
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
