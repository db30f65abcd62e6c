//! One connection's life: a single task selecting over the client's frames, the connection's
//! bounded outbound queue, its kill switch, node shutdown, token expiry (re-armed by `refresh`)
//! and the keepalive timer; `hygiene` holds the rate limit, keepalive and refresh logic, `open`
//! the session's start and end.
//!
//! Delivery keeps a per-room `last_seq`: a publication at or below it is a duplicate (history
//! replay and live fan-out overlap by design, so no message falls between them) and is dropped;
//! one above `last_seq + 1` reveals a gap, which is filled from the store before it is sent.
//! Writes are batched — everything queued is fed, then flushed once (a burst's acks wait for
//! the deliveries already queued behind them: `Session::unflushed`) — and raced against the
//! kill switch so a stuck socket cannot pin a dead session.

use super::hygiene::{Deadlines, Due, Hygiene, Throttle};
use crate::app::AppState;
use crate::auth::ClientClaims;
use crate::hub::{ConnCtl, ConnId, Inbox, Outbox, Publication};
use crate::limits::ConnPermit;
use crate::model::Participant;
use crate::store::SeqRange;
use crate::wire::close;
use crate::wire::frames::{ClientFrame, ServerFrame};
use crate::wire::message_frame;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Most frames written before one flush.
const WRITE_BATCH: usize = 64;
/// Consecutive malformed frames tolerated before closing with 1002.
const MAX_BAD_FRAMES: u32 = 5;

/// A room this connection is subscribed to.
#[derive(Debug)]
pub(super) struct Sub {
    pub last_seq: u64,
    /// Boxed: a `Participant` is ~300 bytes, and a one-room map holds 4 slots of `Sub`.
    pub participant: Option<Box<Participant>>,
}

pub(super) struct Session {
    pub state: AppState,
    pub claims: ClientClaims,
    pub conn: ConnId,
    pub ctl: Arc<ConnCtl>,
    pub tx: Outbox,
    pub identity: Arc<str>,
    /// Keyed by room id with a fast (not flood-resistant) hash: every delivery looks its room
    /// up here, and the keys are server-generated ids of rooms this connection may read.
    pub subs: FxHashMap<Uuid, Sub>,
    pub socket: WebSocket,
    bad_frames: u32,
    pub hygiene: Hygiene,
    /// A frame read ahead (while batching `send`s) that is handled next.
    pub stash: Option<Option<Result<Message, axum::Error>>>,
    /// Where typing, read and presence frames go to be published (see `commands`).
    pub publisher: Option<crate::conn::queue::Sender<Publication>>,
    /// Frames fed but not flushed: a burst's acks wait for the deliveries already queued (on
    /// one node the sender's own message is queued before its ack is written), so both leave
    /// in one write; the loop flushes them before it waits for anything.
    pub unflushed: bool,
}

/// Why the loop ended.
pub(super) enum End {
    /// Close with this code.
    Close(u16),
    /// The peer is gone (or closed with this code); nothing to send.
    Gone,
    PeerClosed(u16),
}

impl Session {
    /// The session of an authenticated connection, with the sending side of its queue.
    pub(super) fn new(
        state: AppState,
        socket: WebSocket,
        claims: ClientClaims,
        permit: ConnPermit,
        tx: Outbox,
    ) -> Session {
        state.metrics.ws_opened();
        Session {
            hygiene: Hygiene::new(&state.config.ws, permit),
            conn: state.hub.next_conn_id(),
            identity: claims.sub.as_str().into(),
            ctl: Arc::new(ConnCtl::child_of(&state.shutdown)),
            state,
            claims,
            tx,
            subs: FxHashMap::default(),
            socket,
            bad_frames: 0,
            stash: None,
            publisher: None,
            unflushed: false,
        }
    }

    pub(super) async fn event_loop(&mut self, rx: &mut Inbox) -> End {
        let mut armed_exp = self.claims.exp;
        let mut deadlines = Deadlines::new(&self.state.config.ws, armed_exp);
        let timer = tokio::time::sleep_until(deadlines.next());
        tokio::pin!(timer);
        let ctl = self.ctl.clone();
        // One kill switch (a child of the node's shutdown token), created once: re-creating
        // the wait on every turn costs a notifier registration per frame in a busy room.
        let killed = ctl.cancelled();
        tokio::pin!(killed);
        let shutdown = self.state.shutdown.clone();
        let close_code = || match ctl.killed() {
            Some(code) => code,
            None if shutdown.is_cancelled() => close::GOING_AWAY,
            None => close::INTERNAL_ERROR,
        };
        loop {
            // Acks fed by a burst go out now, unless deliveries are queued to go with them.
            if self.unflushed && (self.stash.is_some() || rx.is_empty()) {
                self.unflushed = false;
                if self.socket.flush().await.is_err() {
                    return End::Gone;
                }
            }
            let incoming = match self.stash.take() {
                Some(incoming) => incoming,
                None => tokio::select! {
                    biased;
                    _ = &mut killed => return End::Close(close_code()),
                    _ = &mut timer => {
                        if let Due::Expired = deadlines.fired() {
                            return End::Close(close::TOKEN_EXPIRED);
                        }
                        if let Some(end) = Box::pin(self.keepalive()).await {
                            return end;
                        }
                        timer.as_mut().reset(deadlines.next());
                        continue;
                    }
                    Some(p) = rx.recv() => {
                        let mut batch = vec![p];
                        while batch.len() < WRITE_BATCH {
                            match rx.try_recv() {
                                Some(p) => batch.push(p),
                                None => break,
                            }
                        }
                        tokio::select! {
                            biased;
                            _ = &mut killed => return End::Close(close_code()),
                            r = self.deliver(batch) => if r.is_err() { return End::Gone },
                        }
                        continue;
                    }
                    incoming = self.socket.recv() => incoming,
                },
            };
            self.hygiene.last_seen = tokio::time::Instant::now();
            match incoming {
                None => return End::Gone,
                Some(Err(e)) => return read_error(e),
                Some(Ok(Message::Text(text))) => {
                    if let Some(code) = Box::pin(self.on_text(text)).await {
                        return End::Close(code);
                    }
                    if self.claims.exp != armed_exp {
                        // A `refresh` swapped the token: re-arm the expiry.
                        armed_exp = self.claims.exp;
                        deadlines.expiry = super::hygiene::expiry_deadline(armed_exp);
                        timer.as_mut().reset(deadlines.next());
                    }
                }
                Some(Ok(Message::Binary(_))) => return End::Close(close::UNSUPPORTED_DATA),
                Some(Ok(Message::Close(f))) => return End::PeerClosed(f.map_or(1005, |f| f.code)),
                Some(Ok(_)) => {} // ping/pong: answered by the library
            }
        }
    }

    /// Parses and runs one client frame; `Some(code)` asks to close.
    async fn on_text(&mut self, text: Utf8Bytes) -> Option<u16> {
        let parsed = ClientFrame::parse(text.as_str());
        if let Ok(ClientFrame::Send { conversation_id, text, medias, client_id, visibility, via }) = parsed {
            // A rate-limited `send` is answered in order with its client_id (see `send`).
            self.bad_frames = 0;
            let refused = match self.admit_send() {
                Ok(refused) => refused.or_else(|| self.note_refused(visibility)),
                Err(code) => return Some(code),
            };
            let out = super::send::Outgoing { conversation_id, text, medias, client_id, visibility, via, refused };
            return self.on_send(out).await;
        }
        match self.throttle().await {
            Throttle::Pass => {}
            Throttle::Drop => return None,
            Throttle::Close(code) => return Some(code),
        }
        match parsed {
            Ok(ClientFrame::Send { .. }) => None,
            Ok(frame) => {
                self.bad_frames = 0;
                if self.handle(frame).await.is_err() {
                    return Some(close::NORMAL);
                }
                None
            }
            Err(e) => {
                self.bad_frames += 1;
                if self.bad_frames >= MAX_BAD_FRAMES {
                    return Some(close::PROTOCOL_ERROR);
                }
                let msg = format!("malformed frame: {e}");
                let f = ServerFrame::Error { code: "bad_frame", message: &msg, conversation_id: None, client_id: None };
                self.send_now(f.to_text()).await.err().map(|_| close::NORMAL)
            }
        }
    }

    /// Writes the publications that are new for this connection, filling gaps from history.
    async fn deliver(&mut self, batch: Vec<Arc<Publication>>) -> Result<(), axum::Error> {
        let mut wrote = false;
        let mut revoked = Vec::new();
        let mut removed = Vec::new();
        for p in batch {
            let (room, seq, frame) = match &*p {
                // A connection-wide frame (conversation watch): not part of any room's order.
                Publication::Direct { frame } => {
                    self.socket.feed(Message::Text(frame.clone())).await?;
                    wrote = true;
                    continue;
                }
                Publication::Audience { room, staff, public } => {
                    if self.subs.contains_key(room) {
                        let frame = if self.claims.sees_internal() { staff } else { public };
                        self.socket.feed(Message::Text(frame.clone())).await?;
                        wrote = true;
                    }
                    continue;
                }
                Publication::Ephemeral { room, frame }
                | Publication::Internal { room, frame }
                | Publication::Assigned { room, frame, .. } => {
                    let hidden = matches!(&*p, Publication::Internal { .. }) && !self.claims.sees_internal();
                    if hidden || !self.subs.contains_key(room) {
                        continue;
                    }
                    self.socket.feed(Message::Text(frame.clone())).await?;
                    wrote = true;
                    if let Publication::Assigned { owner_id, .. } = &*p
                        && self.claims.is_agent()
                        && owner_id.as_deref().is_some_and(|o| o != self.claims.sub)
                    {
                        revoked.push(*room);
                    }
                    continue;
                }
                Publication::Removed { room, participant_id } => {
                    let holds = self.subs.get(room).and_then(|s| s.participant.as_ref()).map(|p| p.id);
                    if holds == Some(*participant_id) {
                        // Dropped here, so nothing later in this batch reaches the room.
                        self.subs.remove(room);
                        removed.push(*room);
                        let f = ServerFrame::Unsubscribed { conversation_id: *room, reason: "removed" };
                        self.socket.feed(Message::Text(f.to_text())).await?;
                        wrote = true;
                    }
                    continue;
                }
                // Taken by the broker's handler; never queued to a connection.
                Publication::Changed { .. } => continue,
                Publication::Sync { room, seq } => (*room, *seq, None),
                Publication::Message { room, seq, frame, internal } => {
                    if *internal && !self.claims.sees_internal() {
                        // A private note: this reader's position moves past it, nothing is sent.
                        Box::pin(self.skip_note(*room, *seq)).await?;
                        wrote = true; // the fill below the note may have written
                        continue;
                    }
                    (*room, *seq, Some(frame))
                }
            };
            let Some(sub) = self.subs.get(&room) else { continue };
            let last = sub.last_seq;
            if seq <= last {
                continue;
            }
            let Some(frame) = frame else {
                Box::pin(self.fill_gap(room, last, seq + 1)).await?;
                wrote = true;
                continue;
            };
            // If the store cannot be read now, hold `last_seq` below the gap and drop this
            // frame: the next publication or sync marker retries the fill, so nothing is skipped.
            if seq > last + 1 && !Box::pin(self.fill_gap(room, last, seq)).await? {
                continue;
            }
            self.socket.feed(Message::Text(frame.clone())).await?;
            wrote = true;
            if let Some(sub) = self.subs.get_mut(&room) {
                sub.last_seq = seq;
            }
        }
        // A removed participant's connection leaves the hub too (presence, broker interest).
        for room in removed {
            Box::pin(self.leave(room)).await;
        }
        // An agent whose room went to another agent stops receiving it.
        for room in revoked {
            Box::pin(self.leave(room)).await;
            let f = ServerFrame::Unsubscribed { conversation_id: room, reason: "reassigned" };
            self.socket.feed(Message::Text(f.to_text())).await?;
        }
        if wrote || self.unflushed {
            self.unflushed = false;
            self.socket.flush().await?;
        }
        Ok(())
    }

    /// Sends the messages between `after` and `before` (exclusive) from the store; `false`
    /// when the store could not be read (nothing was sent, `last_seq` unchanged).
    async fn fill_gap(&mut self, room: Uuid, after: u64, before: u64) -> Result<bool, axum::Error> {
        let limit = (before - after - 1) as usize;
        let missing =
            match self.state.store.messages(room, SeqRange { after: Some(after), before: Some(before), limit }).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e.chain(), %room, "cannot fill delivery gap yet");
                    return Ok(false);
                }
            };
        let notes = self.claims.sees_internal();
        for mut m in missing {
            crate::media::attach::fresh(&self.state, &mut m);
            // Private notes are skipped for readers that may not see them (a seq gap they expect).
            if notes || !m.is_internal() {
                self.socket.feed(Message::Text(message_frame(&m))).await?;
            }
            if let Some(sub) = self.subs.get_mut(&room) {
                sub.last_seq = m.seq;
            }
        }
        Ok(true)
    }

    /// A private note at `seq` for a reader that may not see it: fills anything missing below
    /// it, then moves the position past it. Nothing is written for the note itself.
    async fn skip_note(&mut self, room: Uuid, seq: u64) -> Result<(), axum::Error> {
        let Some(last) = self.subs.get(&room).map(|s| s.last_seq) else { return Ok(()) };
        if seq <= last || (seq > last + 1 && !self.fill_gap(room, last, seq).await?) {
            return Ok(());
        }
        if let Some(sub) = self.subs.get_mut(&room) {
            sub.last_seq = seq;
        }
        Ok(())
    }

    /// Writes one frame now (replies to the client's own requests).
    pub(super) async fn send_now(&mut self, frame: Utf8Bytes) -> Result<(), axum::Error> {
        self.socket.send(Message::Text(frame)).await
    }

    pub(super) async fn leave_all(&mut self) {
        self.unwatch();
        let rooms: Vec<Uuid> = self.subs.keys().copied().collect();
        for room in rooms {
            self.leave(room).await;
        }
    }
}

fn read_error(e: axum::Error) -> End {
    use tungstenite::error::{CapacityError, Error as WsError};
    let inner = e.into_inner();
    match inner.downcast_ref::<WsError>() {
        Some(WsError::Capacity(CapacityError::MessageTooLong { .. })) => End::Close(close::MESSAGE_TOO_BIG),
        Some(WsError::Protocol(_)) | Some(WsError::Utf8(_)) => End::Close(close::PROTOCOL_ERROR),
        _ => End::Gone,
    }
}
