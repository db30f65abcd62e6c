//! A session's start and end: `Opened` holds an authenticated connection's session, its queue
//! and its agent identity; `run` drives the loop (`session`), then leaves every room, closes
//! with the loop's code and marks the agent unavailable.
//!
//! Shaped for memory: a connection's task is as big as its largest state and is held for the
//! connection's whole life, so everything here after the loop is boxed while it runs, and
//! `run` works on `Opened` in place (not on its parts moved out, which would store them twice).
//! The steps before the loop are in `ws::opening`.

use super::session::{End, Session};
use crate::app::AppState;
use crate::auth::ClientClaims;
use crate::hub::Inbox;
use crate::limits::ConnPermit;
use axum::extract::ws::{Message, WebSocket};
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;

/// How long a closing session waits for the peer's close reply (see `close_handshake`).
const CLOSE_LINGER: Duration = Duration::from_millis(250);

/// An authenticated connection about to run its loop. `run` takes it by value and works on
/// it in place: moving its parts out would store them twice in the connection's task.
pub(super) struct Opened {
    s: Session,
    rx: Inbox,
    /// An agent's `(tenant, identity)`: available for auto-assignment while connected.
    agent: Option<(Uuid, String)>,
}

impl Opened {
    pub fn new(
        state: AppState,
        socket: WebSocket,
        claims: ClientClaims,
        permit: ConnPermit,
        agent: Option<(Uuid, String)>,
    ) -> Opened {
        let (tx, rx) = crate::conn::outbox(state.config.ws.queue_len);
        Opened { s: Session::new(state, socket, claims, permit, tx), rx, agent }
    }

    /// The session's life; the steps after the loop are boxed (see above). An agent
    /// becomes unavailable once its socket is gone.
    ///
    /// An `async` block using `self` where it was captured, not an `async fn`: an `async fn`
    /// moves its argument from one slot of the future into a second one, so the task held
    /// the whole `Opened` twice.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    pub fn run(mut self) -> impl Future<Output = ()> + Send {
        async move {
            // Registered under its sign-in session, so ending that session closes it (4001).
            Box::pin(self.s.hold_session()).await;
            let end = self.s.event_loop(&mut self.rx).await;
            self.s.release_session();
            Box::pin(finish(&mut self.s, end)).await;
            let Opened { s, rx, agent } = self;
            let state = s.state.clone();
            drop((s, rx));
            if let Some((tenant, identity)) = agent {
                Box::pin(state.agents.disconnected(tenant, &identity)).await;
            }
        }
    }
}

/// Leaves every room, then closes (see `close_handshake`) unless the peer is gone.
async fn finish(s: &mut Session, end: End) {
    s.leave_all().await;
    let code = match end {
        End::Close(code) => {
            let timeout = Duration::from_millis(s.state.config.ws.close_timeout_ms);
            let _ = tokio::time::timeout(timeout, close_handshake(&mut s.socket, code)).await;
            code
        }
        End::PeerClosed(code) => code,
        End::Gone => 1006, // "abnormal closure": no close frame
    };
    s.state.metrics.ws_closed(code);
}

/// Sends our close frame, then waits (at most `CLOSE_LINGER`) for the peer's close reply
/// (RFC 6455 §7.1.1), so the socket is not dropped while our close frame may still be unread.
///
/// After a read error (an oversized frame, say) the library ends the stream at once while the
/// unread rest of the frame stays in the kernel buffer: dropping the socket then sends a TCP
/// reset, which can destroy the close frame before the peer read it. So when the reply cannot
/// be read we still linger until the deadline before letting go.
async fn close_handshake(socket: &mut WebSocket, code: u16) {
    if socket.send(super::close_message(code)).await.is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + CLOSE_LINGER;
    let wait_reply = async {
        loop {
            match socket.recv().await {
                Some(Ok(Message::Close(_))) => return,
                None | Some(Err(_)) => return tokio::time::sleep_until(deadline).await,
                Some(Ok(_)) => {}
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, wait_reply).await;
}
