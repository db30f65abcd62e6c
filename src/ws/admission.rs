//! Who may open a WebSocket on this node, and how it shows its token: the Origin allow-list,
//! the node and per-identity connection limits, and the token.
//!
//! Origin and limit refusals are plain HTTP errors (403, 503, 429 with the JSON error body):
//! nothing is upgraded, so the node spends no session on them. Token problems still upgrade
//! and then close with 4001/4002, because a browser can read a close code but not the status
//! of a failed upgrade, and the client must learn to fetch a new token.
//!
//! The token comes one of three ways, checked in this order: `?token=` in the URL (old
//! clients; URLs end up in browser and proxy logs, so new clients should not), a
//! `token.<jwt>` entry in the `Sec-WebSocket-Protocol` list next to [`PROTOCOL`] (the server
//! echoes only [`PROTOCOL`], never the token), or none at all: then the first frame must be
//! `{"type":"auth","token":…}` within `ws.auth_timeout_ms` ([`first_frame`]), checked by the
//! same [`verify`]. A first frame that is not `auth` closes with 4001, no frame in time with
//! 4003. The page uses the first-frame form.

use crate::app::AppState;
use crate::auth::{ClientClaims, TokenError};
use crate::error::Error;
use crate::limits::ConnPermit;
use crate::wire::close;
use crate::wire::frames::ClientFrame;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::{HeaderMap, header};
use std::time::Duration;

/// A connection let in: its token verdict (claims, or the close code to leave with; `None`
/// when the token is to come in the first frame) and its slot in the connection counts, held
/// for the session's life.
pub(super) struct Admitted {
    pub verdict: Option<Result<ClientClaims, u16>>,
    pub permit: ConnPermit,
}

/// Runs the door checks in order; `Err` is the error refusing the upgrade (already counted).
/// `token` is `None` when the connection presented none (it may still send an `auth` frame).
pub(super) fn admit(state: &AppState, headers: &HeaderMap, token: Option<&str>) -> Result<Admitted, Error> {
    let origin = headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("\u{fffd}"));
    if !origin_allowed(&state.config.ws.allowed_origins, origin) {
        let shown: String = origin.unwrap_or("").chars().take(200).collect();
        state.metrics.ws_refused("origin");
        return Err(Error::Forbidden(format!("origin `{shown}` is not in ws.allowed_origins")));
    }
    let mut permit = state.limits.connection().inspect_err(|_| state.metrics.ws_refused("node_limit"))?;
    let verdict = token.map(|t| verify(state, &mut permit, t)).transpose()?;
    Ok(Admitted { verdict, permit })
}

/// Checks `token` and counts its identity into `permit`: `Ok(Err(code))` for a bad token (the
/// close code), `Err` when the identity already holds its most connections.
pub(super) fn verify(
    state: &AppState,
    permit: &mut ConnPermit,
    token: &str,
) -> Result<Result<ClientClaims, u16>, Error> {
    let verdict = match token {
        "" => Err(close::INVALID_TOKEN),
        t => state.tokens.verify(t).map_err(|e| match e {
            TokenError::Expired => close::TOKEN_EXPIRED,
            TokenError::Invalid => close::INVALID_TOKEN,
        }),
    };
    match &verdict {
        Ok(c) => {
            state.limits.identity(permit, c.tid, &c.sub).inspect_err(|_| state.metrics.ws_refused("identity_limit"))?
        }
        Err(code) => {
            state.metrics.ws_refused(if *code == close::TOKEN_EXPIRED { "token_expired" } else { "invalid_token" })
        }
    }
    Ok(verdict)
}

/// Whether a request with `origin` may connect. An empty list allows every origin. A request
/// without an Origin header is not a browser's (browsers always send one on WebSocket
/// upgrades) and cannot be a cross-site hijack, so it is allowed; it still needs a token.
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    allowed.is_empty() || allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// The subprotocol the server speaks and echoes when a client offers it.
pub const PROTOCOL: &str = "switchboard.v1";
/// What marks the token entry in the client's subprotocol list.
const TOKEN_PREFIX: &str = "token.";

/// The token a client put in its `Sec-WebSocket-Protocol` list, if any.
pub(super) fn protocol_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(TOKEN_PREFIX).map(str::to_string))
}

/// Waits for the `auth` frame and checks its token like one presented at the upgrade; `Err`
/// is the close code to leave with.
pub(super) async fn first_frame(
    state: &AppState,
    socket: &mut WebSocket,
    permit: &mut ConnPermit,
) -> Result<ClientClaims, u16> {
    let limit = Duration::from_millis(state.config.ws.auth_timeout_ms);
    let text = tokio::select! {
        _ = state.shutdown.cancelled() => return Err(close::GOING_AWAY),
        r = tokio::time::timeout(limit, first_text(socket)) => match r {
            Ok(text) => text,
            Err(_) => {
                state.metrics.ws_refused("auth_timeout");
                return Err(close::AUTH_TIMEOUT);
            }
        },
    };
    let token = match text.map(|t| serde_json::from_str::<ClientFrame>(t.as_str())) {
        Some(Ok(ClientFrame::Auth { token })) => token.0,
        _ => {
            state.metrics.ws_refused("auth_required");
            return Err(close::INVALID_TOKEN);
        }
    };
    match verify(state, permit, &token) {
        Ok(verdict) => verdict,
        Err(_) => Err(close::TRY_AGAIN_LATER),
    }
}

/// The first text frame; `None` if anything else (binary, close, an error) comes first.
async fn first_text(socket: &mut WebSocket) -> Option<Utf8Bytes> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(t)) => return Some(t),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_ignoring_case() {
        let list = vec!["https://app.example.com".to_string()];
        assert!(origin_allowed(&list, Some("https://APP.example.com")));
        assert!(origin_allowed(&list, None));
        assert!(!origin_allowed(&list, Some("https://app.example.com.evil.test")));
        assert!(!origin_allowed(&list, Some("http://app.example.com")));
        assert!(!origin_allowed(&list, Some("null")));
        assert!(origin_allowed(&[], Some("https://anything.test")));
    }

    #[test]
    fn the_token_is_found_among_the_offered_protocols() {
        let mut h = HeaderMap::new();
        assert_eq!(protocol_token(&h), None);
        h.insert(SEC_WEBSOCKET_PROTOCOL, "switchboard.v1, token.abc.def".parse().unwrap());
        assert_eq!(protocol_token(&h).as_deref(), Some("abc.def"));
        h.insert(SEC_WEBSOCKET_PROTOCOL, "switchboard.v1".parse().unwrap());
        assert_eq!(protocol_token(&h), None);
    }
}
