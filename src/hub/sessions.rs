//! Which connections on *this* node belong to which sign-in session, so that ending a session
//! closes its open WebSockets at once (close 4001) instead of leaving them working until
//! their token expires.
//!
//! A connection whose token names a session (`sid` claim: agent and admin sign-ins) is held
//! here for as long as it runs under that session; `end` trips the kill switch of each. The
//! signal that a session ended comes through the broker's one handler, from this node or any
//! other (`crate::broker`), so it reaches every node the same way. Owns no session state:
//! whether a session is alive is `crate::agents::sessions`' business.

use crate::conn::{ConnCtl, ConnId};
use crate::wire::close;
use dashmap::DashMap;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Cheap to clone; every clone is the same registry.
#[derive(Debug, Clone, Default)]
pub struct SessionConns {
    by_session: Arc<DashMap<String, FxHashMap<ConnId, Arc<ConnCtl>>>>,
}

impl SessionConns {
    /// Holds connection `conn` under session `sid` until [`SessionConns::release`].
    pub fn hold(&self, sid: &str, conn: ConnId, ctl: Arc<ConnCtl>) {
        self.by_session.entry(sid.to_string()).or_default().insert(conn, ctl);
    }

    /// The connection no longer runs under `sid` (it closed, or took another session's token).
    pub fn release(&self, sid: &str, conn: ConnId) {
        self.by_session.remove_if_mut(sid, |_, conns| {
            conns.remove(&conn);
            conns.is_empty()
        });
    }

    /// Session `sid` ended: each of its connections on this node closes with 4001. Answers
    /// how many were told.
    pub fn end(&self, sid: &str) -> usize {
        let Some((_, conns)) = self.by_session.remove(sid) else { return 0 };
        for ctl in conns.values() {
            ctl.kill(close::INVALID_TOKEN);
        }
        conns.len()
    }

    /// Sessions with connections on this node.
    pub fn len(&self) -> usize {
        self.by_session.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_session.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_a_session_kills_its_connections_only() {
        let s = SessionConns::default();
        let (a1, a2, b) = (Arc::new(ConnCtl::default()), Arc::new(ConnCtl::default()), Arc::new(ConnCtl::default()));
        s.hold("a", 1, a1.clone());
        s.hold("a", 2, a2.clone());
        s.hold("b", 3, b.clone());
        s.release("a", 2);
        assert_eq!(s.end("a"), 1);
        assert_eq!(a1.killed(), Some(close::INVALID_TOKEN));
        assert_eq!(a2.killed(), None, "a released connection is no longer the session's");
        assert_eq!(b.killed(), None);
        assert_eq!(s.end("a"), 0);
        s.release("b", 3);
        assert!(s.is_empty());
    }
}
