//! What a session does for each client frame: subscribe (with history recovery), unsubscribe,
//! send (through the one post path), typing, read, ping, refresh (in `hygiene`), and the
//! conversation-list watch (in `watch`).
//!
//! Typing, read and presence frames go to every node without holding up the connection's own
//! frames: publishing is a broker round trip, and awaited inline a stalled Redis held the
//! session a whole command timeout per `typing`, so a `send` behind a few of them answered
//! after several timeouts instead of one. A session hands them to its own publisher task
//! (`publish_ephemeral`), which publishes them in order; a frame that finds its short queue
//! full (the broker is not keeping up) is dropped — they are best-effort signals.
//!
//! Subscribing registers with the hub *before* reading the room's position and history, so a
//! message appended meanwhile arrives twice (replay and live) rather than never; the session's
//! `last_seq` drops the second copy.

use super::session::{Session, Sub};
use crate::app::AppState;
use crate::auth::ClientClaims;
use crate::conn::queue::Sender;
use crate::conversations;
use crate::error::Error;
use crate::hub::Subscriber;
use crate::store::SeqRange;
use crate::wire::Publication;
use crate::wire::frames::{ClientFrame, ServerFrame};
use crate::wire::message_frame;
use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::SinkExt;
use uuid::Uuid;

type Sent = Result<(), axum::Error>;

impl Session {
    pub(super) async fn handle(&mut self, frame: ClientFrame) -> Sent {
        match frame {
            ClientFrame::Subscribe { conversation_id, since, epoch } => {
                match self.subscribe(conversation_id, since, epoch).await {
                    Ok(()) => Ok(()),
                    Err(e) => self.error(&e, Some(conversation_id), None).await,
                }
            }
            ClientFrame::Unsubscribe { conversation_id } => {
                if self.subs.contains_key(&conversation_id) {
                    self.leave(conversation_id).await;
                }
                self.send_now(ServerFrame::Unsubscribed { conversation_id, reason: "client" }.to_text()).await
            }
            ClientFrame::Send { conversation_id, text, medias, client_id, visibility, via } => {
                // The session's reader normally batches sends (`Session::on_send`); alone here.
                let refused = self.note_refused(visibility);
                let out = super::send::Outgoing { conversation_id, text, medias, client_id, visibility, via, refused };
                self.post_batch(vec![out]).await
            }
            ClientFrame::Typing { conversation_id } => match self.subscribed_participant(conversation_id) {
                Ok(pid) => {
                    let id = Some(&*self.identity);
                    let staff = ServerFrame::Typing { conversation_id, participant_id: pid, identity: id }.to_text();
                    let public = ServerFrame::Typing { conversation_id, participant_id: pid, identity: None }.to_text();
                    self.audience(conversation_id, staff, public)
                }
                Err(e) => self.error(&e, Some(conversation_id), None).await,
            },
            ClientFrame::Read { conversation_id, seq } => match self.subscribed_participant(conversation_id) {
                Ok(pid) => {
                    if let Some(pid) = pid
                        && let Err(e) = self.state.store.mark_read(conversation_id, pid, seq).await
                    {
                        return self.error(&e, Some(conversation_id), None).await;
                    }
                    // Staff (agent, admin, operator tokens) keep a server-side marker too, the
                    // one `POST …/read` moves and conversation lists report.
                    if self.claims.convs.is_none()
                        && let Err(e) = self.mark_staff_read(conversation_id, seq).await
                    {
                        return self.error(&e, Some(conversation_id), None).await;
                    }
                    let (participant_id, id) = (pid, Some(&*self.identity));
                    let staff = ServerFrame::Read { conversation_id, participant_id, identity: id, seq }.to_text();
                    let public = ServerFrame::Read { conversation_id, participant_id, identity: None, seq }.to_text();
                    self.audience(conversation_id, staff, public)
                }
                Err(e) => self.error(&e, Some(conversation_id), None).await,
            },
            ClientFrame::Auth { .. } => {
                let e =
                    Error::invalid("already_authenticated", "`auth` is only valid as the first frame; use `refresh`");
                self.error(&e, None, None).await
            }
            ClientFrame::Ping { id } => self.send_now(ServerFrame::Pong { id: id.as_ref() }.to_text()).await,
            ClientFrame::Refresh { token } => self.refresh(&token.0).await,
            ClientFrame::WatchConversations {} => self.watch_conversations().await,
            ClientFrame::UnwatchConversations {} => self.unwatch_conversations().await,
            ClientFrame::PresenceStats { conversation_id } => match self.subscribed_participant(conversation_id) {
                Ok(_) => {
                    let (connections, identities) = self.state.hub.room_size(conversation_id);
                    let announced = self.state.presence.announces(connections);
                    let f = ServerFrame::PresenceStats { conversation_id, connections, identities, announced };
                    self.send_now(f.to_text()).await
                }
                Err(e) => self.error(&e, Some(conversation_id), None).await,
            },
        }
    }

    async fn error(&mut self, e: &Error, conversation_id: Option<Uuid>, client_id: Option<&str>) -> Sent {
        let msg = e.message();
        self.send_now(ServerFrame::Error { code: e.code(), message: &msg, conversation_id, client_id }.to_text()).await
    }

    /// Access check shared by subscribe and send: token scope, tenant, assignment (agent
    /// tokens: own or unassigned conversations only) and (for client tokens) current
    /// membership. Returns the holder's participant in the room, if any.
    ///
    /// Takes the parts it needs rather than `&self`: the socket inside `Session` is not `Sync`.
    pub(super) async fn authorize(
        state: &AppState,
        claims: &ClientClaims,
        conversation_id: Uuid,
    ) -> Result<Option<crate::model::Participant>, Error> {
        if !claims.may_access(conversation_id) {
            return Err(Error::Forbidden("this token does not grant access to that conversation".into()));
        }
        let c = conversations::get(state, claims.tid, conversation_id).await?;
        crate::agents::check_claims(claims, &c)?;
        let participant = conversations::member(state, conversation_id, claims.address_kind(), &claims.sub).await?;
        if participant.is_none() && claims.convs.is_some() {
            return Err(Error::Forbidden("you are no longer a participant of this conversation".into()));
        }
        Ok(participant)
    }

    async fn subscribe(&mut self, room: Uuid, since: Option<u64>, epoch: Option<String>) -> Result<(), Error> {
        if !self.subs.contains_key(&room) && self.subs.len() >= self.state.config.ws.max_subscriptions {
            return Err(Error::invalid(
                "too_many_subscriptions",
                format!("at most {} subscriptions per connection", self.state.config.ws.max_subscriptions),
            ));
        }
        let participant = Self::authorize(&self.state, &self.claims, room).await?;
        let joined = self.state.hub.subscribe(
            room,
            Subscriber {
                conn: self.conn,
                tx: self.tx.clone(),
                ctl: self.ctl.clone(),
                identity: self.identity.clone(),
                staff: self.claims.sees_internal(),
            },
        );
        if joined.first_in_room {
            self.state.broker.room_interest(room);
        }
        // Until the subscription is recorded below, live publications for `room` are skipped by
        // `deliver`; they are still covered because the replay reads history after joining.
        let result = self.recover(room, since, epoch, participant).await;
        if result.is_err() && !self.subs.contains_key(&room) {
            self.state.hub.unsubscribe(room, self.conn);
            self.state.broker.room_interest(room);
            return result;
        }
        if joined.first_for_identity {
            self.announce_presence(room, true);
        }
        result
    }

    /// Sends `subscribed` and the replay, and records the subscription's position.
    async fn recover(
        &mut self,
        room: Uuid,
        since: Option<u64>,
        epoch: Option<String>,
        participant: Option<crate::model::Participant>,
    ) -> Result<(), Error> {
        let store = &self.state.store;
        let mut pos = store.room_state(room).await?.ok_or(Error::NotFound("conversation"))?;
        if let Some(s) = since
            && s > pos.seq
            && epoch.is_some()
        {
            // The client was told a seq the room no longer has: history went back in time (its
            // epoch may already be an old one, when the room noticed a Redis restart first).
            pos = store.claimed_position(room, s).await?.ok_or(Error::NotFound("conversation"))?;
        }
        let max = self.state.config.ws.max_recovery as u64;
        let mut replay = Vec::new();
        let recovered = match since {
            None => false,
            Some(s) => {
                let same_epoch = epoch.as_ref().is_none_or(|e| *e == pos.epoch);
                let retained = store.first_retained_seq(room).await?;
                if same_epoch && s <= pos.seq && pos.seq - s <= max && s + 1 >= retained {
                    replay =
                        store.messages(room, SeqRange { after: Some(s), before: None, limit: max as usize }).await?;
                    crate::media::attach::fresh_all(&self.state, &mut replay);
                    true
                } else {
                    false
                }
            }
        };
        let last_seq = replay.last().map_or(pos.seq, |m| m.seq.max(pos.seq));
        // A big room lists nobody (that list is O(members) per join): `presence_stats` counts.
        let (connections, _) = self.state.hub.room_size(room);
        let staff = self.claims.sees_internal();
        let online =
            if self.state.presence.announces(connections) { self.state.hub.online(room, staff) } else { Vec::new() };
        let (participant_id, last_read_seq) = match &participant {
            Some(p) => (Some(p.id), Some(p.last_read_seq)),
            None => (None, None),
        };
        let f = ServerFrame::Subscribed {
            conversation_id: room,
            seq: pos.seq,
            epoch: &pos.epoch,
            recovered,
            online,
            participant_id,
            last_read_seq,
        };
        self.subs.insert(room, Sub { last_seq, participant: participant.map(Box::new) });
        let notes = self.claims.sees_internal();
        let write = async {
            self.socket.feed(Message::Text(f.to_text())).await?;
            // A reader that may not see private notes gets the others: the notes' seqs are gaps.
            for m in replay.iter().filter(|m| notes || !m.is_internal()) {
                self.socket.feed(Message::Text(message_frame(m))).await?;
            }
            self.socket.flush().await
        };
        write.await.map_err(|e| Error::internal_from("socket", e))
    }

    /// Leaves `room` locally, releasing broker interest and announcing presence as needed.
    pub(super) async fn leave(&mut self, room: Uuid) {
        self.subs.remove(&room);
        if let Some(left) = self.state.hub.unsubscribe(room, self.conn) {
            if left.last_in_room {
                self.state.broker.room_interest(room);
            }
            if left.last_for_identity {
                self.announce_presence(room, false);
            }
        }
    }

    /// This connection's identity joined or left `room`: announced now, later (coalesced with
    /// the room's other changes by `hub::presence`), or not at all in a big room.
    fn announce_presence(&mut self, room: Uuid, joined: bool) {
        let (connections, _) = self.state.hub.room_size(room);
        // Staff presence is for staff: end users know people by participant, never by identity.
        let staff = self.claims.sees_internal();
        if self.state.presence.admit(room, connections, &self.identity, staff, joined) {
            let state = if joined { "joined" } else { "left" };
            let frame = ServerFrame::Presence { conversation_id: room, identity: &self.identity, state }.to_text();
            match staff {
                true => self.publish(Publication::Internal { room, frame }),
                false => self.publish_ephemeral(room, frame),
            }
        }
    }

    fn subscribed_participant(&self, room: Uuid) -> Result<Option<Uuid>, Error> {
        match self.subs.get(&room) {
            Some(s) => Ok(s.participant.as_ref().map(|p| p.id)),
            None => Err(Error::invalid("not_subscribed", "subscribe to the conversation first")),
        }
    }

    /// Typing and read frames: published on the side (`publish_ephemeral`), nothing to answer.
    /// Publishes a typing or read frame: with the sender's identity to staff connections,
    /// without it to end users (who know people by participant: name and avatar).
    fn audience(&mut self, room: Uuid, staff: Utf8Bytes, public: Utf8Bytes) -> Sent {
        self.publish(Publication::Audience { room, staff, public });
        Ok(())
    }
}

/// Ephemeral frames waiting for the broker, per connection.
const QUEUE: usize = 32;

impl Session {
    /// Moves this staff identity's server-side read marker (`crate::agents::reads`) in `room`,
    /// never past the newest message.
    fn mark_staff_read(&self, room: Uuid, seq: u64) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let (state, tenant, identity) = (self.state.clone(), self.claims.tid, self.claims.sub.clone());
        async move {
            let c = crate::conversations::get(&state, tenant, room).await?;
            crate::agents::reads::mark(&*state.records, room, &identity, seq.min(c.last_seq)).await.map(drop)
        }
    }

    /// Queues `frame` for every subscriber of `room` on every node; never waits.
    pub(super) fn publish_ephemeral(&mut self, room: Uuid, frame: Utf8Bytes) {
        self.publish(Publication::Ephemeral { room, frame });
    }

    fn publish(&mut self, p: Publication) {
        let tx = self.publisher.get_or_insert_with(|| spawn_publisher(&self.state));
        let room = p.room();
        if tx.try_send(p).is_err() {
            tracing::debug!(?room, "ephemeral frame dropped: the broker is not keeping up");
        }
    }
}

/// The publisher task: ends when the session drops its sender (after publishing what is
/// queued, e.g. the final `presence left`) or when the node shuts down.
/// Its queue is `conn::queue`, not tokio's: most connections publish one `presence` frame
/// and then nothing, and tokio's channel would hold a block of 32 slots for the connection's
/// whole life (2.8 KiB; this one frees its slots once drained).
fn spawn_publisher(state: &AppState) -> Sender<Publication> {
    let (tx, mut rx) = crate::conn::queue::bounded::<Publication>(QUEUE);
    let (broker, shutdown) = (state.broker.clone(), state.shutdown.clone());
    state.tasks.spawn(async move {
        loop {
            let p = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = rx.recv() => match p {
                    Some(p) => p,
                    None => return,
                },
            };
            if let Err(e) = broker.publish(p).await {
                tracing::warn!(error = %e, "ephemeral frame not published");
            }
        }
    });
    tx
}
