//! Tenant-wide watchers: WebSocket connections that asked to follow their tenant's whole
//! conversation list (`watch_conversations`), so an operator's page learns of a new room (an
//! inbound SMS from a new number) or a room's new last message at once instead of polling.
//!
//! This module owns the node-local registry (which connections watch which tenant, and
//! whether this node is listening to that tenant's events yet) and, in `feed`, the one task
//! per node that turns broker events into `conversation` frames. It holds no durable state.
//! The broker is told about interest exactly like rooms (`Broker::tenant_interest`): the
//! memory broker hands its events over directly; the Redis broker subscribes to the tenant's
//! event channel `P:events:<tenant>` while this node has watchers of that tenant, so events
//! written on any node reach watchers on every node. Once the node listens, each watcher gets
//! a `watching` frame (reload the list now; every later change arrives as a frame), and gets
//! it again whenever events may have been missed (pub/sub link outage, full queue).
//!
//! Frames go through the connection's own bounded queue as direct publications
//! (`Publication::direct`): a watcher that cannot keep up is closed as a slow consumer, like a
//! room subscriber. No lock is held across an `.await`.

mod feed;

pub use feed::start;

use crate::conn::queue::Refused;
use crate::conn::{ConnCtl, ConnId, Outbox};
use crate::wire::ServerFrame;
use crate::wire::{Event, EventKind, Publication};
use dashmap::DashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Events waiting for the feed task; beyond this they are dropped and watchers resync.
const QUEUE_LEN: usize = 8192;

/// The event kinds that change a conversation list.
pub const KINDS: [EventKind; 4] = [
    EventKind::ConversationCreated,
    EventKind::ConversationUpdated,
    EventKind::ConversationDeleted,
    EventKind::MessageCreated,
];

/// One watching connection.
#[derive(Debug, Clone)]
pub struct Watcher {
    pub conn: ConnId,
    pub tx: Outbox,
    pub ctl: Arc<ConnCtl>,
    /// The token's identity; for agents it decides which conversations they see.
    pub identity: Arc<str>,
    /// Agent tokens see only their own and unassigned conversations (`crate::agents`).
    pub agent: bool,
    /// Whether it was sent `watching` since it registered.
    told: bool,
}

impl Watcher {
    pub fn new(conn: ConnId, tx: Outbox, ctl: Arc<ConnCtl>, identity: Arc<str>, agent: bool) -> Watcher {
        Watcher { conn, tx, ctl, identity, agent, told: false }
    }
}

#[derive(Debug, Default)]
struct TenantWatch {
    /// The node receives this tenant's events (set by the broker, cleared on a link loss).
    live: bool,
    watchers: Vec<Watcher>,
}

/// Cheap to clone; every clone is the same registry.
#[derive(Debug, Clone)]
pub struct Watchers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tenants: DashMap<Uuid, TenantWatch>,
    queue: mpsc::Sender<Event>,
    /// Taken once by the feed task.
    receiver: Mutex<Option<mpsc::Receiver<Event>>>,
    /// An event was dropped on a full queue: every watcher must reload.
    overflowed: AtomicBool,
}

impl Default for Watchers {
    fn default() -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_LEN);
        let inner = Inner {
            tenants: DashMap::new(),
            queue,
            receiver: Mutex::new(Some(rx)),
            overflowed: AtomicBool::new(false),
        };
        Watchers { inner: Arc::new(inner) }
    }
}

/// Hands `frame` to one watcher; a full queue closes it as a slow consumer.
fn push(w: &Watcher, frame: &Arc<Publication>) {
    if let Err(Refused::Full) = w.tx.try_send(frame.clone()) {
        w.ctl.kill(crate::wire::close::SLOW_CONSUMER);
    }
}

fn watching_frame() -> Arc<Publication> {
    Arc::new(Publication::Direct { frame: ServerFrame::Watching {}.to_text() })
}

impl Watchers {
    /// Registers `w` for `tenant`. Returns `true` when it was told `watching` already (the
    /// node listens to the tenant); `false` when the broker must be told of the interest.
    /// Watching again from the same connection just repeats `watching` once live.
    pub fn watch(&self, tenant: Uuid, mut w: Watcher) -> bool {
        let mut t = self.inner.tenants.entry(tenant).or_default();
        let live = t.live;
        if let Some(old) = t.watchers.iter_mut().find(|x| x.conn == w.conn) {
            old.agent = w.agent;
            if live {
                push(old, &watching_frame());
            }
            return live;
        }
        if live {
            push(&w, &watching_frame());
            w.told = true;
        }
        t.watchers.push(w);
        live
    }

    /// Watching connections on this node, all tenants (the `switchboard_ws_watchers` gauge).
    pub fn count(&self) -> usize {
        self.inner.tenants.iter().map(|t| t.watchers.len()).sum()
    }

    /// Removes connection `conn`; `true` when that was the tenant's last watcher here (the
    /// broker may stop listening).
    pub fn unwatch(&self, tenant: Uuid, conn: ConnId) -> bool {
        let mut last = false;
        self.inner.tenants.remove_if_mut(&tenant, |_, t| {
            if let Some(i) = t.watchers.iter().position(|w| w.conn == conn) {
                t.watchers.swap_remove(i);
                last = t.watchers.is_empty();
            }
            t.watchers.is_empty()
        });
        last
    }

    pub fn is_watching(&self, tenant: Uuid, conn: ConnId) -> bool {
        self.inner.tenants.get(&tenant).is_some_and(|t| t.watchers.iter().any(|w| w.conn == conn))
    }

    /// Whether any local connection watches `tenant` (the broker's subscription test).
    pub fn has_tenant(&self, tenant: Uuid) -> bool {
        self.inner.tenants.contains_key(&tenant)
    }

    /// Tenants with local watchers.
    pub fn tenants(&self) -> Vec<Uuid> {
        self.inner.tenants.iter().map(|t| *t.key()).collect()
    }

    /// The broker now delivers `tenant`'s events: watchers not yet told get `watching`; with
    /// `resync` (events may have been missed) every watcher gets it again.
    pub fn live(&self, tenant: Uuid, resync: bool) {
        let Some(mut t) = self.inner.tenants.get_mut(&tenant) else { return };
        t.live = true;
        let frame = watching_frame();
        for w in t.watchers.iter_mut().filter(|w| resync || !w.told) {
            push(w, &frame);
            w.told = true;
        }
    }

    /// The broker lost its event link: nothing is live until it says so again.
    pub fn all_offline(&self) {
        for mut t in self.inner.tenants.iter_mut() {
            t.live = false;
        }
    }

    /// An event from the broker (any node's). Cheap and synchronous: it is dropped unless this
    /// node has watchers of its tenant and it changes a conversation list.
    pub fn offer(&self, event: &Event) {
        if !KINDS.contains(&event.kind) || !self.has_tenant(event.tenant_id) {
            return;
        }
        if self.inner.queue.try_send(event.clone()).is_err() {
            self.inner.overflowed.store(true, Ordering::Relaxed);
        }
    }

    /// Hands each of `tenant`'s watchers what `pick` chooses for it (nothing on `None`).
    pub fn send(&self, tenant: Uuid, pick: impl Fn(&Watcher) -> Option<Arc<Publication>>) {
        let Some(t) = self.inner.tenants.get(&tenant) else { return };
        for w in &t.watchers {
            if let Some(frame) = pick(w) {
                push(w, &frame);
            }
        }
    }

    fn take_receiver(&self) -> Option<mpsc::Receiver<Event>> {
        self.inner.receiver.lock().ok().and_then(|mut r| r.take())
    }

    /// Whether events were dropped since the last call.
    fn take_overflow(&self) -> bool {
        self.inner.overflowed.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher(agent: bool) -> (Watcher, crate::conn::Inbox) {
        let (tx, rx) = crate::conn::outbox(4);
        (Watcher::new(rand::random(), tx, Arc::new(ConnCtl::default()), "ann".into(), agent), rx)
    }

    fn frames(rx: &mut crate::conn::Inbox) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv())
            .map(|p| match &*p {
                Publication::Direct { frame } => frame.to_string(),
                other => panic!("watchers get direct frames only, not {other:?}"),
            })
            .collect()
    }

    #[test]
    fn watching_is_sent_once_live_and_again_on_resync() {
        let w = Watchers::default();
        let t = Uuid::now_v7();
        let (a, mut ra) = watcher(false);
        assert!(!w.watch(t, a.clone()), "not live yet: the broker must be told");
        assert!(frames(&mut ra).is_empty());
        w.live(t, false);
        assert_eq!(frames(&mut ra), [r#"{"type":"watching"}"#]);
        let (b, mut rb) = watcher(true);
        assert!(w.watch(t, b.clone()), "live: told at once");
        assert_eq!(frames(&mut rb).len(), 1);
        w.live(t, false);
        assert!(frames(&mut ra).is_empty() && frames(&mut rb).is_empty(), "already told");
        w.all_offline();
        w.live(t, true);
        assert_eq!((frames(&mut ra).len(), frames(&mut rb).len()), (1, 1), "resync tells everyone");
        assert!(!w.unwatch(t, a.conn));
        assert!(w.unwatch(t, b.conn), "the last watcher releases the tenant");
        assert!(!w.has_tenant(t));
    }

    #[test]
    fn offer_keeps_only_list_events_of_watched_tenants_and_a_full_queue_kills() {
        let w = Watchers::default();
        let (t, other) = (Uuid::now_v7(), Uuid::now_v7());
        let (a, _ra) = watcher(false);
        w.watch(t, a.clone());
        w.offer(&Event::new(EventKind::ConversationCreated, other, None, ()));
        w.offer(&Event::new(EventKind::ParticipantAdded, t, None, ()));
        w.offer(&Event::new(EventKind::MessageCreated, t, None, ()));
        let mut rx = w.take_receiver().unwrap();
        assert_eq!(rx.try_recv().unwrap().kind, EventKind::MessageCreated);
        assert!(rx.try_recv().is_err());
        let frame = Arc::new(Publication::Direct { frame: "{}".into() });
        for _ in 0..5 {
            w.send(t, |_| Some(frame.clone()));
        }
        assert_eq!(a.ctl.killed(), Some(crate::wire::close::SLOW_CONSUMER));
    }
}
