//! What keeps one connection honest and alive: the per-connection frame rate limit, the
//! ping/pong keepalive with its idle timeout, the `refresh` frame that extends a token, and the
//! connection's place under its sign-in session (`crate::hub::sessions`: ending it closes us).
//!
//! All of it runs inside the session task (no timers of its own beyond the keepalive
//! interval the session selects on), so there is nothing to share or lock.

use super::session::{End, Session};
use crate::auth::TokenError;
use crate::config::WsConfig;
use crate::limits::{ConnPermit, FrameLimiter};
use crate::wire::close;
use crate::wire::frames::ServerFrame;
use axum::extract::ws::Message;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Per-connection operational state.
#[derive(Debug)]
pub(super) struct Hygiene {
    limiter: FrameLimiter,
    /// Client frames refused by the rate limit in a row.
    strikes: u32,
    /// Last time anything (frame, pong, ping) arrived from the client.
    pub last_seen: Instant,
    /// The connection's slot in the node and identity counts, released when the session ends.
    _permit: ConnPermit,
}

impl Hygiene {
    pub fn new(cfg: &WsConfig, permit: ConnPermit) -> Self {
        Hygiene {
            limiter: FrameLimiter::new(cfg.rate_per_sec, cfg.rate_burst),
            strikes: 0,
            last_seen: Instant::now(),
            _permit: permit,
        }
    }
}

/// The rate limit's verdict on one client frame (see `Session::admit`).
pub(super) enum Admit {
    Pass,
    /// Drop it and tell the client this.
    Drop(String),
    /// Close the connection with this code.
    Close(u16),
}

/// What the rate limit says about one client frame.
pub(super) enum Throttle {
    /// Handle it.
    Pass,
    /// Dropped; the client was told with an `error` frame.
    Drop,
    /// Close the connection with this code.
    Close(u16),
}

/// The session's one timer: the next keepalive ping or the token's expiry, whichever comes
/// first (one `Sleep` polled per wake-up instead of two).
#[derive(Debug)]
pub(super) struct Deadlines {
    every: Duration,
    pub next_ping: Instant,
    pub expiry: Instant,
}

/// What the timer fired for.
pub(super) enum Due {
    Expired,
    Ping,
}

impl Deadlines {
    pub fn new(cfg: &WsConfig, exp: u64) -> Deadlines {
        let every = Duration::from_secs(cfg.ping_interval_secs.max(1));
        Deadlines { every, next_ping: Instant::now() + every, expiry: expiry_deadline(exp) }
    }

    pub fn next(&self) -> Instant {
        self.next_ping.min(self.expiry)
    }

    /// Called when the timer fires; schedules the next ping when this was one.
    pub fn fired(&mut self) -> Due {
        let now = Instant::now();
        if now >= self.expiry {
            return Due::Expired;
        }
        self.next_ping = now + self.every;
        Due::Ping
    }
}

/// When a token with expiry `exp` (Unix seconds) runs out, as a timer deadline.
pub(super) fn expiry_deadline(exp: u64) -> Instant {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    Instant::now() + Duration::from_secs(exp.saturating_sub(now))
}

impl Session {
    /// Applies the frame rate limit to the frame just received, telling the client when it
    /// is dropped.
    pub(super) async fn throttle(&mut self) -> Throttle {
        match self.admit() {
            Admit::Pass => Throttle::Pass,
            Admit::Close(code) => Throttle::Close(code),
            Admit::Drop(why) => match self.send_error("rate_limited", &why).await {
                Ok(()) => Throttle::Drop,
                Err(_) => Throttle::Close(close::NORMAL),
            },
        }
    }

    /// The rate limit's verdict on one frame, without writing anything.
    pub(super) fn admit(&mut self) -> Admit {
        let Err(wait) = self.hygiene.limiter.check() else {
            self.hygiene.strikes = 0;
            return Admit::Pass;
        };
        self.state.metrics.rate_limited("ws");
        self.hygiene.strikes += 1;
        let cfg = &self.state.config.ws;
        if self.hygiene.strikes > cfg.max_rate_limited_frames {
            return Admit::Close(close::RATE_LIMITED);
        }
        Admit::Drop(format!(
            "more than {} frames per second: frame dropped; retry in {} ms (keep going and the connection closes with 4029)",
            cfg.rate_per_sec,
            wait.as_millis().max(1)
        ))
    }

    /// One keepalive tick: close an idle connection, else ping it. The ping write is bounded
    /// so a peer that stopped reading cannot hold the session here.
    pub(super) async fn keepalive(&mut self) -> Option<End> {
        let cfg = &self.state.config.ws;
        if self.hygiene.last_seen.elapsed() >= Duration::from_secs(cfg.idle_timeout_secs) {
            return Some(End::Close(close::IDLE_TIMEOUT));
        }
        // Backstop for a lost "session ended" signal (a broker outage): a sign-in's connection
        // checks its session at every ping (an error keeps it: the store may be reconnecting).
        if self.claims.sid.is_some()
            && matches!(crate::agents::sessions::alive(&self.state, &self.claims).await, Ok(false))
        {
            return Some(End::Close(close::INVALID_TOKEN));
        }
        let bound = Duration::from_millis(cfg.close_timeout_ms);
        match tokio::time::timeout(bound, self.socket.send(Message::Ping(Default::default()))).await {
            Ok(Ok(())) => None,
            Ok(Err(_)) => Some(End::Gone),
            Err(_) => Some(End::Close(close::IDLE_TIMEOUT)),
        }
    }

    /// `refresh {token}`: adopt a new token for the same tenant and identity. Rooms the new
    /// token does not cover are left (`unsubscribed`, reason `token_scope`). A bad token only
    /// earns an `error` frame; the current one stays in force.
    pub(super) async fn refresh(&mut self, token: &str) -> Result<(), axum::Error> {
        let claims = match self.state.tokens.verify(token) {
            Ok(c) => c,
            Err(TokenError::Expired) => {
                return self.send_error("token_expired", "the new token has already expired").await;
            }
            Err(TokenError::Invalid) => {
                return self.send_error("invalid_token", "the new token is malformed or forged").await;
            }
        };
        // A token of a session that has ended (signed out, agent deleted) renews nothing.
        let state = self.state.clone();
        match crate::agents::sessions::alive(&state, &claims).await {
            Ok(true) => {}
            Ok(false) => return self.send_error("invalid_token", "this token's session has ended").await,
            Err(_) => return self.send_error("unavailable", "the session could not be checked; retry").await,
        }
        if claims.tid != self.claims.tid || claims.sub != self.claims.sub {
            return self.send_error("forbidden", "a refresh token must name the same tenant and identity").await;
        }
        let dropped: Vec<Uuid> = self.subs.keys().filter(|room| !claims.may_access(**room)).copied().collect();
        for room in dropped {
            self.leave(room).await;
            self.send_now(ServerFrame::Unsubscribed { conversation_id: room, reason: "token_scope" }.to_text()).await?;
        }
        let expires_at = chrono::DateTime::from_timestamp(claims.exp as i64, 0).unwrap_or_default();
        let before = self.claims.clone();
        self.claims = claims;
        if before.sid != self.claims.sid {
            // Another sign-in's token: the connection now ends with that session.
            if let Some(old) = &before.sid {
                self.state.hub.sessions().release(old, self.conn);
            }
            if let Some(new) = &self.claims.sid {
                self.state.hub.sessions().hold(new, self.conn, self.ctl.clone());
            }
        }
        self.send_now(ServerFrame::Refreshed { expires_at }.to_text()).await?;
        self.rewatch_after_refresh(&before).await
    }

    /// Holds the connection under its token's sign-in session, so ending that session closes
    /// it (4001); checked once more now, since the session may have ended after the door's
    /// check and before it was held.
    pub(super) async fn hold_session(&mut self) {
        let Some(sid) = &self.claims.sid else { return };
        self.state.hub.sessions().hold(sid, self.conn, self.ctl.clone());
        if !crate::agents::sessions::alive(&self.state, &self.claims).await.unwrap_or(true) {
            self.ctl.kill(close::INVALID_TOKEN);
        }
    }

    pub(super) fn release_session(&self) {
        if let Some(sid) = &self.claims.sid {
            self.state.hub.sessions().release(sid, self.conn);
        }
    }

    async fn send_error(&mut self, code: &str, message: &str) -> Result<(), axum::Error> {
        self.send_now(ServerFrame::Error { code, message, conversation_id: None, client_id: None }.to_text()).await
    }
}
