//! `send` frames: read ahead, post as one burst, acknowledge in order.
//!
//! A client that sends faster than one store round trip would otherwise be held to one
//! message per round trip (the session handles its frames in order). So when a `send` is
//! read, the `send`s already waiting on the socket are read with it (up to `SEND_BATCH`,
//! each still rate-limited) and posted together through `conversations::post_many`: the
//! room is read once and the messages are appended in one pipeline, in the order sent. Any
//! other frame read ahead is kept and handled next, so frames keep their order.

use super::hygiene::Admit;
use super::session::Session;
use crate::conversations::{self, Author, PostRequest};
use crate::error::Error;
use crate::model::{Media, Participant, Visibility};
use crate::wire::Ack;
use crate::wire::frames::{ClientFrame, ServerFrame};
use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::{FutureExt, SinkExt};
use uuid::Uuid;

/// Most `send`s posted as one burst.
const SEND_BATCH: usize = 64;

/// One `send` frame.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub conversation_id: Uuid,
    pub text: String,
    pub medias: Vec<Media>,
    pub client_id: Option<String>,
    pub visibility: Visibility,
    /// The account to deliver through (`via`), where recipients have an address on it.
    pub via: Option<crate::model::SendVia>,
    /// Refused before posting (the frame rate limit), answered in its place in the burst.
    pub refused: Option<Error>,
}

impl Session {
    /// Posts `first` with the `send`s already waiting behind it; `Some(code)` asks to close
    /// (after the burst was posted and acknowledged).
    pub(super) async fn on_send(&mut self, first: Outgoing) -> Option<u16> {
        let mut batch = vec![first];
        let close = self.read_ahead(&mut batch);
        if self.post_batch(batch).await.is_err() {
            return Some(crate::wire::close::NORMAL);
        }
        close
    }

    /// Moves `send` frames that have already arrived into `batch`, without waiting.
    fn read_ahead(&mut self, batch: &mut Vec<Outgoing>) -> Option<u16> {
        while batch.len() < SEND_BATCH {
            let Some(incoming) = self.socket.recv().now_or_never() else { break };
            self.hygiene.last_seen = tokio::time::Instant::now();
            let Some(Ok(Message::Text(text))) = incoming else {
                self.stash = Some(incoming);
                break;
            };
            let Ok(ClientFrame::Send { conversation_id, text: body, medias, client_id, visibility, via }) =
                ClientFrame::parse(text.as_str())
            else {
                self.stash = Some(Some(Ok(Message::Text(text))));
                break;
            };
            let refused = match self.admit_send() {
                Ok(refused) => refused.or_else(|| self.note_refused(visibility)),
                Err(code) => return Some(code),
            };
            batch.push(Outgoing { conversation_id, text: body, medias, client_id, visibility, via, refused });
        }
        None
    }

    /// Why a `send` of `visibility` is refused: only tokens that see private notes write them.
    pub(super) fn note_refused(&self, visibility: Visibility) -> Option<Error> {
        (!visibility.is_public() && !self.claims.sees_internal())
            .then(|| Error::Forbidden("only API keys, operator and agent tokens write internal notes".into()))
    }

    /// The rate limit for one `send`: `Ok(Some(error))` when refused — answered in its place in
    /// the burst, with its client_id, so the client sees its answers in the order it sent —
    /// `Err(code)` to close.
    pub(super) fn admit_send(&mut self) -> Result<Option<Error>, u16> {
        match self.admit() {
            Admit::Pass => Ok(None),
            Admit::Drop(why) => Ok(Some(Error::TooMany { code: "rate_limited", message: why })),
            Admit::Close(code) => Err(code),
        }
    }

    /// Posts a burst and writes one `ack` or `error` per `send`, in order.
    pub(super) async fn post_batch(&mut self, batch: Vec<Outgoing>) -> Result<(), axum::Error> {
        let mut authors: Vec<(Uuid, Result<Participant, Error>)> = Vec::new();
        for o in batch.iter().filter(|o| o.refused.is_none()) {
            if !authors.iter().any(|(room, _)| *room == o.conversation_id) {
                let author = self.author(o.conversation_id).await;
                authors.push((o.conversation_id, author));
            }
        }
        let mut reqs = Vec::with_capacity(batch.len());
        let mut slots = Vec::with_capacity(batch.len());
        for o in batch {
            if let Some(e) = o.refused {
                slots.push((o.conversation_id, o.client_id, Err(e)));
                continue;
            }
            let author = authors.iter().find(|(room, _)| *room == o.conversation_id).map(|(_, a)| a.clone());
            let slot = match author {
                Some(Ok(p)) => {
                    reqs.push(PostRequest {
                        tenant: self.claims.tid,
                        conversation_id: o.conversation_id,
                        author: Author::Participant(Box::new(p)),
                        text: o.text,
                        medias: o.medias,
                        client_id: o.client_id.clone(),
                        via: None,
                        screened: false,
                        send_via: o.via.map(|v| v.account_id),
                        visibility: o.visibility,
                        template: None,
                        tag: None,
                        room: None,
                    });
                    Ok(reqs.len() - 1)
                }
                Some(Err(e)) => Err(e),
                None => Err(Error::internal("author missing")),
            };
            slots.push((o.conversation_id, o.client_id, slot));
        }
        let mut results: Vec<Option<_>> =
            conversations::post_many(&self.state, reqs).await.into_iter().map(Some).collect();
        for (room, client_id, slot) in slots {
            let mut echo = None;
            let outcome = slot.and_then(|i| results[i].take().unwrap_or(Err(Error::internal("no outcome"))));
            let frame = match outcome {
                Ok(a) => {
                    if !a.duplicate {
                        self.state.metrics.message_posted(crate::metrics::Entry::Ws);
                    }
                    let m = &a.message;
                    echo = a.json.as_ref().and_then(|json| self.echo(room, m, json.as_str()));
                    if self.claims.convs.is_none()
                        && let Err(e) =
                            crate::agents::reads::own_message(&*self.state.records, room, &self.claims.sub, m.seq).await
                    {
                        tracing::warn!(error = %e.chain(), %room, "read marker not moved past an own message");
                    }
                    Ack {
                        conversation_id: room,
                        client_id: m.client_id.as_deref(),
                        seq: m.seq,
                        message_id: m.id,
                        duplicate: a.duplicate,
                        author_participant_id: m.author,
                    }
                    .to_text()
                }
                Err(e) => error_frame(&e, room, client_id.as_deref()),
            };
            self.socket.feed(Message::Text(frame)).await?;
            if let Some(echo) = echo {
                self.socket.feed(Message::Text(echo)).await?;
            }
        }
        // Flushed by the loop, with the deliveries already queued (`Session::unflushed`).
        self.unflushed = true;
        Ok(())
    }

    /// The `message` frame of this connection's own new message, to go out right behind its
    /// ack (one socket write for both), when the connection is subscribed to `room` and the
    /// message is the very next seq it is owed. The same frame then comes through the broker,
    /// like every subscriber's copy, and is skipped as already delivered (`seq <= last_seq`).
    /// Without this the ack was written at once and the copy a moment later: a third write per
    /// message (ack, own copy, the peer's copy), against the baseline's two. `None` leaves the
    /// copy to the broker (not subscribed, or an earlier message of the room still on its way:
    /// delivering this one first would skip that one).
    fn echo(&mut self, room: Uuid, message: &crate::model::Message, json: &str) -> Option<Utf8Bytes> {
        if message.is_internal() && !self.claims.sees_internal() {
            return None;
        }
        let sub = self.subs.get_mut(&room)?;
        if sub.last_seq + 1 != message.seq {
            return None;
        }
        sub.last_seq = message.seq;
        Some(crate::wire::message_frame_of(json))
    }

    /// The participant this connection writes to `room` as: cached from the subscription,
    /// else authorized now (operator tokens join as a chat participant on their first send).
    async fn author(&mut self, room: Uuid) -> Result<Participant, Error> {
        // Agents are re-checked on every burst: the room may have been assigned elsewhere.
        let cached =
            self.subs.get(&room).filter(|_| !self.claims.is_agent()).and_then(|s| s.participant.as_deref().cloned());
        if let Some(p) = cached {
            return Ok(p);
        }
        let participant = crate::agents::token_writer(&self.state, &self.claims, room).await?;
        if let Some(sub) = self.subs.get_mut(&room) {
            sub.participant = Some(Box::new(participant.clone()));
        }
        Ok(participant)
    }
}

fn error_frame(e: &Error, room: Uuid, client_id: Option<&str>) -> Utf8Bytes {
    let msg = e.message();
    ServerFrame::Error { code: e.code(), message: &msg, conversation_id: Some(room), client_id }.to_text()
}
