//! A live connection's handles as the rest of the node holds them: its id, the sending side
//! of its bounded outbound queue, and its kill switch.
//!
//! The queue itself is `queue` (bounded, and nearly free until something is queued).
//!
//! Shared by the hub (room subscribers) and `watch` (tenant-wide watchers), so neither needs
//! the other. Owns no connection: the WebSocket session (`ws`) owns the socket and the
//! receiving side of the queue.

pub mod queue;

use crate::wire::Publication;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use tokio_util::sync::CancellationToken;

/// Identifies one WebSocket connection on this node.
pub type ConnId = u64;

/// The sending side of a connection's outbound queue: publications shared, never copied.
pub type Outbox = queue::Sender<Arc<Publication>>;

/// The receiving side of a connection's outbound queue (the session's).
pub type Inbox = queue::Receiver<Arc<Publication>>;

/// A connection's outbound queue of `len` publications at most.
pub fn outbox(len: usize) -> (Outbox, Inbox) {
    queue::bounded(len)
}

/// A connection's kill switch: set once with a close code by whoever decides the connection
/// must end (the hub on overflow, shutdown, token expiry); the session loop watches it.
#[derive(Debug, Default)]
pub struct ConnCtl {
    code: AtomicU16,
    token: CancellationToken,
}

impl ConnCtl {
    /// Asks the connection to close with `code`; the first reason wins.
    pub fn kill(&self, code: u16) {
        if self.code.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.token.cancel();
        }
    }

    /// The close code, once killed.
    pub fn killed(&self) -> Option<u16> {
        match self.code.load(Ordering::Acquire) {
            0 => None,
            c => Some(c),
        }
    }

    /// A kill switch that also trips when `parent` (the node's shutdown) is cancelled, so a
    /// session waits on one token instead of two; `killed()` stays `None` in that case.
    pub fn child_of(parent: &CancellationToken) -> ConnCtl {
        ConnCtl { code: AtomicU16::new(0), token: parent.child_token() }
    }

    /// Resolves when the connection has been told to close.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }
}
