//! `watch_conversations` / `unwatch_conversations`: a connection follows its tenant's whole
//! conversation list (see `crate::watch` for the registry and the frames).
//!
//! Only tokens that see the tenant's list may watch: operator tokens (everything) and agent
//! tokens (their own and unassigned conversations); a token scoped to some conversations gets
//! an `error` (`forbidden`). A `refresh` to a token with other rights re-registers the watch
//! (or ends it, with that same error) so a watcher never sees more than its current token.

use super::session::Session;
use crate::auth::ClientClaims;
use crate::watch::Watcher;
use crate::wire::frames::ServerFrame;

type Sent = Result<(), axum::Error>;

/// Whether `claims` may follow the tenant's conversation list.
fn may_watch(claims: &ClientClaims) -> bool {
    claims.convs.is_none()
}

impl Session {
    pub(super) async fn watch_conversations(&mut self) -> Sent {
        if !may_watch(&self.claims) {
            let f = ServerFrame::Error {
                code: "forbidden",
                message: "only operator and agent tokens may watch the conversation list",
                conversation_id: None,
                client_id: None,
            };
            return self.send_now(f.to_text()).await;
        }
        let tenant = self.claims.tid;
        let w =
            Watcher::new(self.conn, self.tx.clone(), self.ctl.clone(), self.identity.clone(), self.claims.is_agent());
        if !self.state.watchers.watch(tenant, w) {
            // `watching` follows once the broker delivers this tenant's events.
            self.state.broker.tenant_interest(tenant);
        }
        Ok(())
    }

    pub(super) async fn unwatch_conversations(&mut self) -> Sent {
        self.unwatch();
        self.send_now(ServerFrame::Unwatched {}.to_text()).await
    }

    /// Ends this connection's watch, if any, releasing the broker's interest after the last.
    pub(super) fn unwatch(&mut self) {
        let tenant = self.claims.tid;
        if self.state.watchers.unwatch(tenant, self.conn) {
            self.state.broker.tenant_interest(tenant);
        }
    }

    /// After a `refresh` from `before`: a watch whose rights changed is registered anew.
    pub(super) async fn rewatch_after_refresh(&mut self, before: &ClientClaims) -> Sent {
        let same = before.is_agent() == self.claims.is_agent() && may_watch(before) == may_watch(&self.claims);
        if same || !self.state.watchers.is_watching(before.tid, self.conn) {
            return Ok(());
        }
        self.unwatch();
        self.watch_conversations().await
    }
}
