//! What the hub hands to connections, and how it tells one to go away.

use axum::extract::ws::Utf8Bytes;
use std::sync::atomic::{AtomicU16, Ordering};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// One frame for one room, serialized once and shared by every receiving connection.
#[derive(Debug, Clone)]
pub struct Publication {
    pub room: Uuid,
    /// The message seq, or 0 for ephemeral frames (typing, read, presence) that are not history.
    pub seq: u64,
    /// The complete JSON text frame as clients receive it; empty for a sync marker.
    pub frame: Utf8Bytes,
}

impl Publication {
    /// A marker saying "history of `room` reaches `seq`": each receiving connection fills
    /// whatever it is missing up to `seq` from the store. Brokers send it after a link outage,
    /// since publications lost on the wire would otherwise only be noticed at the next message.
    pub fn sync(room: Uuid, seq: u64) -> Publication {
        Publication { room, seq, frame: Utf8Bytes::from_static("") }
    }

    pub fn is_sync(&self) -> bool {
        self.seq > 0 && self.frame.as_str().is_empty()
    }

    /// A frame for the connection itself rather than for one of its rooms (the tenant-wide
    /// `conversation` and `watching` frames, see `crate::watch`): written as it is, in queue order.
    pub fn direct(frame: Utf8Bytes) -> Publication {
        Publication { room: Uuid::nil(), seq: 0, frame }
    }

    pub fn is_direct(&self) -> bool {
        self.room.is_nil()
    }
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
